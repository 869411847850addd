"""The ``bayescale`` command: fit, compare, backtest, predict, decide and report from saved fits.

Commands: ``demo``, ``fit``, ``compare``, ``backtest``, ``predict``, ``optimal``, ``target``,
``versus``, ``report``, ``laws``.
"""

import argparse
import ast
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.engine.sample import SAMPLERS
from bayescale.extrapolation import CHOICES, persists
from bayescale.likelihoods import likelihood_names
from bayescale.pooling import POOLINGS


def _sampling_args(parser, draws=1000, tune=1000, chains=4):
    parser.add_argument("--draws", type=int, default=draws)
    parser.add_argument("--tune", type=int, default=tune)
    parser.add_argument("--chains", type=int, default=chains)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampler", default="numpyro", choices=SAMPLERS)
    parser.add_argument("--target-accept", type=float, default=0.8)


def _column_args(parser):
    """The response and input columns of a CSV."""
    parser.add_argument("--y", default="loss")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=COLUMN",
        help="map a law input to a column, e.g. --input 'N=Model Size'",
    )


def _likelihood_arg(parser, **how):
    parser.add_argument(
        "--likelihood",
        metavar="NAME[(OPTIONS)]",
        help=f"one of {', '.join(likelihood_names())}; options as keywords, e.g. "
        "'binomial(n=14042)' (the item count) or 'ou_normal(along=D)' (noise correlated "
        "along one curve's checkpoints: use --target-accept 0.95)",
        **how,
    )


def _group_args(parser):
    """How a CSV's runs are read beyond the law's columns: groups, pooling, FLOPs per token."""
    parser.add_argument("--group", help="column of group labels (corpus, model family, ...)")
    parser.add_argument(
        "--pooling",
        action="append",
        default=[],
        metavar="NAME=CHOICE",
        help=f"pooling of one law parameter across groups, CHOICE one of {', '.join(POOLINGS)} "
        "(default with --group: the law's additive terms separate, the rest pooled)",
    )
    parser.add_argument(
        "--flops-per-token",
        type=float,
        default=6.0,
        help="k in D = C / (k N), when tokens come from a compute column (default 6)",
    )


def _data_args(parser):
    """Arguments every command that fits a CSV with one likelihood shares."""
    _column_args(parser)
    _likelihood_arg(parser, default="normal")
    _sampling_args(parser)


def demo(args):
    """Simulate a Chinchilla sweep, fit it, and check a 100x extrapolation against truth."""
    import bayescale
    from bayescale.models.chinchilla import Chinchilla
    from bayescale.simulate import CHINCHILLA_TRUTH, chinchilla_loss, chinchilla_sweep

    df = chinchilla_sweep(random_seed=args.seed)
    print(
        f"Simulated isoFLOP sweep: {len(df)} runs, {df['C'].nunique()} budgets "
        f"{df['C'].min():.1e}-{df['C'].max():.1e} FLOPs, N {df['N'].min():.2g}-"
        f"{df['N'].max():.2g}, 1% log-normal noise (seed {args.seed})."
    )
    print("True parameters:", ", ".join(f"{k}={v:g}" for k, v in CHINCHILLA_TRUTH.items()))
    fit = bayescale.fit(
        df[["N", "D", "loss"]],
        law="chinchilla",
        y="loss",
        random_seed=args.seed,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        sampler=args.sampler,
        target_accept=args.target_accept,
    )
    table = fit.summary(ci=0.9)
    table.insert(0, "truth", pd.Series(CHINCHILLA_TRUTH))
    print("\nPosterior (90% equal-tailed intervals):")
    _show(table)
    print("\nDiagnostics:", fit.diagnostics)
    target_c = 100 * df["C"].max()
    n_star, d_star = Chinchilla.compute_optimal(CHINCHILLA_TRUTH, target_c)
    truth = float(chinchilla_loss(CHINCHILLA_TRUTH, n_star, d_star))
    target = pd.DataFrame({"N": [n_star], "D": [d_star]})
    alone = fit.predict(target, ci=0.9, extrapolation="none").iloc[0]
    pred = fit.predict(target, ci=0.9).iloc[0]
    inside = alone["lower"] <= truth <= alone["upper"]
    print(
        f"\nExtrapolation to C = {target_c:.1e} FLOPs (100x the largest run), at the true "
        f"compute-optimal N = {n_star:.3g}, D = {d_star:.3g}:\n"
        f"  the law's posterior: loss {alone['median']:.4f}, 90% interval "
        f"[{alone['lower']:.4f}, {alone['upper']:.4f}]; true loss {truth:.4f}: "
        f"{'inside' if inside else 'OUTSIDE'} the interval (the runs were simulated from "
        "this law)\n"
        f"  with the default extrapolation error (learnt across real sweeps, centred by a "
        f"backtest inside these runs; reach {pred['reach']:.0f}x): 90% interval "
        f"[{pred['lower']:.4f}, {pred['upper']:.4f}], {pred['extrapolation_share']:.0%} of "
        "its width"
    )
    return _status({"the demo fit": fit})


def _pairs(items, option, form):
    """``{name: value}`` from ``NAME=VALUE`` strings, refusing anything else by name."""
    from bayescale.errors import SpecError

    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value:
            raise SpecError(f"{option} expects {form}, got {item!r}")
        if name in out:
            raise SpecError(f"{option} gives {name!r} twice ({out[name]!r} and {value!r})")
        out[name] = value
    return out


def _call(text, where, form):
    """``NAME`` or ``NAME(arguments)`` -> ``(NAME, positional values, keyword values)``.

    Read with Python's own parser and only literal values kept (numbers, strings; a bare
    word is taken as a string, so ``along=D`` needs no quotes): nothing is evaluated.
    ``where`` (the option and its value) and ``form`` make the error for anything else.
    """
    from bayescale.errors import SpecError

    refused = SpecError(f"{where}: expected {form}")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise refused from None
    if isinstance(node, ast.Name):
        return node.id, [], {}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise refused
    names = [k.arg for k in node.keywords]
    if None in names:  # **options
        raise refused
    if twice := sorted({n for n in names if names.count(n) > 1}):  # Python refuses them too
        raise SpecError(f"{where}: {', '.join(twice)} given more than once")

    def value(arg):
        return arg.id if isinstance(arg, ast.Name) else ast.literal_eval(arg)

    try:
        args = [value(a) for a in node.args]
        kwargs = {k.arg: value(k.value) for k in node.keywords}
    except ValueError:  # an expression, not a literal
        raise refused from None
    return node.func.id, args, kwargs


def _named(text, option, example):
    """``NAME`` or ``NAME(option=value, ...)`` given to ``option``: ``(NAME, options)``."""
    from bayescale.errors import SpecError

    name, args, kwargs = _call(
        text, f"{option} {text!r}", f"NAME or NAME(option=value, ...), e.g. {example}"
    )
    if args:
        raise SpecError(
            f"{option} {text!r}: expected NAME or NAME(option=value, ...): name its options, "
            f"e.g. {example}, not positionally"
        )
    return name, kwargs


def _law(text):
    """``--law NAME`` or ``NAME(option=value, ...)``: the law, with its options."""
    import bayescale

    name, options = _named(text, "--law", "broken_power_law(n_breaks=2)")
    return bayescale.get_law(name, **options)


def _priors(items):
    """``--prior NAME=DIST(args)`` values as ``{name: Prior}``, e.g. ``alpha=Normal(0.3, 0.05)``.

    Positional arguments follow the distribution's parameters in PyMC's order
    (``Normal(mu, sigma)``, ``Beta(alpha, beta)``...); keywords name them.
    """
    from bayescale.errors import SpecError
    from bayescale.priors import Prior

    form = "NAME=DIST(args), e.g. alpha=Normal(mu=0.3, sigma=0.05) or alpha=Normal(0.3, 0.05)"
    out = {}
    for name, text in _pairs(items, "--prior", form).items():
        where = f"--prior {name}={text}"
        dist, args, kwargs = _call(text, where, form)
        if dist not in Prior.supported():
            raise SpecError(f"{where}: unknown distribution {dist!r}; one of {Prior.supported()}")
        names = Prior.parameter_names(dist)
        if len(args) > len(names) or set(names[: len(args)]) & set(kwargs):
            raise SpecError(f"{where}: {dist} takes {', '.join(names)}, each once")
        try:
            out[name] = Prior(dist, **dict(zip(names, args, strict=False)), **kwargs)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None
    return out


def _likelihood(text):
    """``--likelihood NAME`` or ``NAME(key=value, ...)`` as a likelihood (options by keyword)."""
    import bayescale

    name, options = _named(text, "--likelihood", "binomial(n=14042)")
    return bayescale.get_likelihood({"name": name, **options})


def _pooling(items):
    """``--pooling NAME=CHOICE`` values, each choice one of :data:`bayescale.pooling.POOLINGS`."""
    from bayescale.errors import SpecError

    pooling = _pairs(items, "--pooling", f"NAME=CHOICE with CHOICE one of {', '.join(POOLINGS)}")
    for name, choice in pooling.items():
        if choice not in POOLINGS:
            raise SpecError(f"--pooling {name}={choice}: choose one of {', '.join(POOLINGS)}")
    return pooling


def _show(table):
    with pd.option_context(
        "display.float_format", "{:.4g}".format, "display.width", 200, "display.max_columns", 30
    ):
        print(table)


def _sampling(args):
    """The :func:`bayescale.fit` keywords of :func:`_sampling_args`."""
    return {
        "random_seed": args.seed,
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "sampler": args.sampler,
        "target_accept": args.target_accept,
    }


def _grouping(args):
    """The :func:`bayescale.fit` keywords of :func:`_group_args`."""
    return {
        "group": args.group,
        "pooling": _pooling(args.pooling) or None,
        "flops_per_token": args.flops_per_token,
    }


def fit_command(args):
    """Fit a law to a CSV and print the posterior table and diagnostics."""
    import bayescale
    from bayescale.arguments import check_probability
    from bayescale.io import writable

    check_probability(args.ci, "ci")  # checked before fitting, like the output path
    if args.save:
        writable(args.save, "the fit")
    options = {
        "law": _law(args.law),
        "y": args.y,
        "inputs": _pairs(args.input, "--input", "NAME=COLUMN"),
        "priors": _priors(args.prior) or None,
        "likelihood": _likelihood(args.likelihood),
        **_grouping(args),
        **_sampling(args),
    }
    # nutpie and PyMC draw their own progress bars; numpyro's compiled run gets a clock
    fit = bayescale.fit(args.csv, progressbar=not args.quiet and sys.stderr.isatty(), **options)
    _show(fit.summary(ci=args.ci))
    print("\nDiagnostics:", fit.diagnostics)
    if args.save:
        if persists(fit.law):  # saved with the fit, so later commands need no refit
            print("\nBacktesting the fit inside its own runs (the default extrapolation error)")
            own = fit.own_extrapolation.describe(fit.evaluator.edge)
            print(f"Extrapolation error: {own}")
        fit.save(args.save)
        print(f"saved to {args.save}")
    return _status({"the fit": fit})


def compare_command(args):
    """Compare saved fits of the same data by PSIS-LOO; print the table with stacking weights."""
    import bayescale

    named = _by_file_name(args.fits)
    loaded = {name: bayescale.load(f) for name, f in named.items()}
    _show(bayescale.compare(loaded))
    # LOO scores the fitted runs: no extrapolation error, own backtest or not, enters it
    return _status({f"fit {named[name]}": fit for name, fit in loaded.items()}, own_used=False)


def _by_file_name(paths):
    """``{file name without suffix: path}``: how saved fits are labelled in tables."""
    from bayescale.errors import SpecError

    labelled = {Path(f).stem: f for f in paths}
    if len(labelled) < len(paths):
        raise SpecError(f"fits are labelled by file name, which must differ: {list(paths)}")
    return labelled


def _split(items):
    """``--split`` values: ``COLUMN=CUT`` (fit rows at or below the cut) or a boolean column."""
    if len(items) == 1 and "=" not in items[0]:
        return items[0]
    from bayescale.errors import SpecError

    cuts = _pairs(items, "--split", "COLUMN=CUT")
    try:
        return {column: float(cut) for column, cut in cuts.items()}
    except ValueError as err:
        raise SpecError(f"--split expects COLUMN=NUMBER or one boolean column: {err}") from None


def _reach(df, item):
    """``--reach COLUMN=FACTOR``: the split of :func:`bayescale.reach_split`."""
    from bayescale.errors import SpecError
    from bayescale.evaluation.backtesting import reach_split

    ((column, factor),) = _pairs([item], "--reach", "COLUMN=FACTOR").items()
    try:
        factor = float(factor)
    except ValueError:
        raise SpecError(f"--reach expects COLUMN=FACTOR with a number, got {item!r}") from None
    split = reach_split(df, column, factor)
    print(f"Reach split: fit {column} <= {split[column]:.3g}, {factor:g}x below the largest")
    return split


def backtest_command(args):
    """Fit laws below a cut, score them on the held-out rows beside the field's baseline."""
    import bayescale
    from bayescale.data import read_table
    from bayescale.diagnostics import failed_checks
    from bayescale.io import writable, write_atomically

    inputs = _pairs(args.input, "--input", "NAME=COLUMN")
    df = read_table(args.csv)
    split = _split(args.split) if args.split else _reach(df, args.reach)
    if args.by is not None and args.by not in df.columns:  # checked before fitting
        raise bayescale.DataError(f"--by {args.by!r}: no such column in {list(df.columns)}")
    if args.save_predictions:
        writable(args.save_predictions, "the predictions")
    likelihood = _likelihood(args.likelihood)
    laws = {
        text: {"law": _law(text), "inputs": inputs, "likelihood": likelihood} for text in args.law
    }
    result = bayescale.backtest(
        df,
        laws,
        y=args.y,
        split=split,
        baseline=not args.no_baseline,
        n_bootstrap=args.n_bootstrap,
        fit_options={**_sampling(args), **_grouping(args)},
        random_seed=args.seed,
        extrapolation=args.extrapolation,
        progress=not args.quiet,
        client=_client(args.scheduler),
    )
    table = result.table
    print(f"Held-out rows: {int(table['n_test'].iloc[0])} (fitted: {int(table['n_fit'].iloc[0])})")
    held = result.predictions
    resampled = (len(held) if args.by is None else held[args.by].nunique()) >= 2
    if resampled:
        _show(table.join(result.uncertainty(by=args.by, scores=["coverage_90"])))
    else:  # one held-out run (or cluster): nothing to resample
        _show(table)
        print(f"(one held-out {'run' if args.by is None else args.by}: no bootstrap intervals)")
    if not args.no_baseline and resampled:
        baseline = f"baseline {args.law[0]}"
        paired = result.uncertainty(by=args.by, scores=["interval_score_90"], relative_to=baseline)
        print(f"\n90% interval score minus that of {baseline}, paired over held-out rows")
        print("(90% bootstrap interval; wholly below 0: better beyond the luck of these rows):")
        _show(paired.drop(index=baseline))
    if args.save_predictions:
        write_atomically(
            args.save_predictions,
            lambda temporary: result.predictions.to_csv(temporary, index=False),
            "the predictions",
        )
        print(f"predictions saved to {args.save_predictions}")
    failed = [
        f"{name} ({failed_checks(result.fits[name])})"
        for name in result.table.index[result.table["converged"].eq(False)]
    ]
    return _failed_status(failed, "fits that did not converge", "; ")


def _failed_status(failed, what, sep):
    """1, after one ``WARNING: what: ...`` line on stderr naming ``failed``; 0 if it is empty."""
    if failed:
        print(f"\nWARNING: {what}: {sep.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _client(scheduler):
    """``client=`` for ``--scheduler``: an address, ``"local"``, or None (in this process)."""
    from bayescale.batch import ADDRESS_VARIABLE

    return scheduler or os.environ.get(ADDRESS_VARIABLE)


def sensitivity_command(args):
    """Re-answer one compute-optimal question across laws, likelihoods and runs kept."""
    import bayescale

    table = bayescale.sensitivity(
        args.csv,
        args.compute,
        laws=[_law(text) for text in args.law or ["chinchilla", "kaplan"]],
        likelihoods=[_likelihood(text) for text in args.likelihood or ["normal", "student_t"]],
        answer=args.answer,
        ci=args.ci,
        unique_tokens=args.unique_tokens,
        client=_client(args.scheduler),
        progress=not args.quiet,
        y=args.y,
        inputs=_pairs(args.input, "--input", "NAME=COLUMN"),
        flops_per_token=args.flops_per_token,
        **_sampling(args),
    )
    print(f"{args.answer} at C = {args.compute:.3g} FLOPs, {args.ci:.0%} intervals:")
    _show(table)
    failed = [", ".join(key) for key in table.index[~table["converged"].eq(True)]]
    failed += [f"{key} (its own backtest)" for key in table.attrs["own_backtest_failed"]]
    return _failed_status(failed, "fits that did not converge or were refused", "; ")


def _targets(items, option="--at", labels=None):
    """``--at "N=7e10,D=1.4e12"`` (or ``--target``) values: one table row each.

    Values are numbers, except in the column ``labels`` names (a grouped fit's group
    column), which keeps the text as typed: a group labelled ``1`` must not become ``1.0``,
    which the fit would take for a group it never saw.
    """
    from bayescale.errors import SpecError

    rows = []
    for item in items:
        pairs = _pairs([p for p in item.split(",") if p], option, "NAME=VALUE,NAME=VALUE")
        row = {}
        for name, value in pairs.items():
            try:
                row[name] = value if name == labels else float(value)
            except ValueError:
                row[name] = value  # a group label
        rows.append(row)
    if len({frozenset(r) for r in rows}) > 1:  # in any order
        raise SpecError(f"every {option} must name the same columns, got {[list(r) for r in rows]}")
    return pd.DataFrame(rows)


def predict_command(args):
    """Predict from a saved fit at the given inputs, with intervals and each row's reach."""
    import bayescale
    from bayescale.data import read_table

    fit = bayescale.load(args.fit)
    rows = read_table(args.csv) if args.csv else _targets(args.at, labels=fit.data.group)
    table = fit.predict(
        rows, ci=args.ci, kind=args.kind, extrapolation=args.extrapolation, random_seed=args.seed
    )
    _show(table)
    if "extrapolation" in table.attrs:
        print(
            "\nrows with reach > 1 lie beyond the fitted runs: their intervals include the "
            f"extrapolation error ({table.attrs['extrapolation']}; extrapolation_share: its "
            "part of the width; --extrapolation none leaves it out)"
        )
    _new_groups_note(table, fit)
    own_used = args.extrapolation == "calibrated" and "extrapolation" in table.attrs
    return _status({f"fit {args.fit}": fit}, own_used)


def _new_groups_note(table, *fits):
    """Say which group labels of an answer its fits have not seen (a typo shows here)."""
    if new := table.attrs.get("new_groups"):
        seen = sorted({label for fit in fits for label in fit.group_labels})
        print(
            f"\ngroups not in the fit, predicted from the population of groups: {new} "
            f"(the fit's groups: {seen})"
        )


def _status(fits, own_used=True):
    """Exit status of a command that answers from fits: 1, loudly, if any did not converge.

    Or, where ``own_used`` (answers beyond the fitted runs with ``--extrapolation
    calibrated``), if the own backtest behind one's extrapolation error did not
    (:meth:`~bayescale.ScalingFit.own_backtest_failure`; the library's warning of it is
    silenced here with the others). ``fits`` maps how the user named each fit (its file)
    to the fit, so that the warning says which of several failed.
    """
    failed = {name: fit for name, fit in fits.items() if not fit.converged}
    for name, fit in failed.items():
        print(f"\nWARNING: {name} did not converge: {fit.diagnostics}", file=sys.stderr)
    suspect = {name: own_used and fit.own_backtest_failure() for name, fit in fits.items()}
    for name, why in suspect.items():
        if why:
            print(f"\nWARNING: {name}: {why}", file=sys.stderr)
    return 1 if failed or any(suspect.values()) else 0


def _decision_args(parser):
    """Options every decision command shares (``optimal``, ``target``, ``versus``)."""
    parser.add_argument("--ci", type=float, default=0.9)
    parser.add_argument(
        "--flops-per-token", type=float, help="k in C = k N D (default: the fit's, usually 6)"
    )
    _unique_tokens_arg(parser)
    _extrapolation_arg(parser)


def _decision_options(args):
    """The keywords of :func:`_decision_args` as the decision functions take them."""
    return {
        "ci": args.ci,
        "flops_per_token": args.flops_per_token,
        "unique_tokens": args.unique_tokens,
        "extrapolation": args.extrapolation,
    }


def _extrapolation_note(reach, args, what):
    """Say when ``what`` lies beyond the fitted runs and carries the extrapolation error.

    Returns whether a fit's own backtest entered it (``own_used`` of :func:`_status`).
    """
    beyond = bool(np.nanmax(np.asarray(reach, float), initial=0.0) > 1)
    if beyond and args.extrapolation != "none":
        print(
            f"\n{what} beyond the fitted runs (reach > 1) include the extrapolation error "
            f"learnt across real sweeps (--extrapolation {args.extrapolation}; none leaves it "
            "out)"
        )
    return beyond and args.extrapolation == "calibrated"


def optimal_command(args):
    """The compute-optimal N*, D*, tokens per parameter and loss at FLOP budgets."""
    import bayescale

    fit = bayescale.load(args.fit)
    table = bayescale.compute_optimal(
        fit, args.compute, group=args.group, **_decision_options(args)
    )
    _show(table)
    own_used = _extrapolation_note(table["reach"], args, "losses at budgets")
    _new_groups_note(table, fit)
    return _status({f"fit {args.fit}": fit}, own_used)


def target_command(args):
    """The compute (and N, D) needed to reach target losses or accuracies, and P(unreachable)."""
    import bayescale
    from bayescale.errors import SpecError

    if args.accuracy is not None and args.via is None:
        raise SpecError("--accuracy needs --via ACCURACY_FIT.nc (a fit of accuracy on this loss)")
    if args.via is not None and args.accuracy is None:
        raise SpecError("--via is used only with --accuracy (targets of accuracy, not loss)")
    if args.accuracy_group is not None and args.via is None:
        raise SpecError("--accuracy-group is the --via fit's group: give --via and --accuracy")
    fit = bayescale.load(args.fit)
    options = {"group": args.group, "fixed_N": args.fixed_N, **_decision_options(args)}
    fits = {f"fit {args.fit}": fit}
    if args.accuracy is None:
        table = bayescale.compute_for_target(fit, args.loss, **options)
    else:
        via = fits[f"fit {args.via}"] = bayescale.load(args.via)
        table = bayescale.compute_for_accuracy(
            fit, via, args.accuracy, accuracy_group=args.accuracy_group, **options
        )
    _show(table)
    print(
        "\ndraws that never reach the target count as needing infinite compute (an 'inf' "
        "end: more than the interval's tail of the posterior never gets there); "
        "p_unreachable: draws whose asymptote (or, for an accuracy, ceiling) is at or beyond "
        "it; p_out_of_range: others with no budget reaching it in the searched range; "
        "p_below_range: draws that reach it at the smallest budget searched already (a 0 end)"
    )
    own_used = _extrapolation_note(table["reach_upper"], args, "answers")
    _new_groups_note(table, fit)
    return _status(fits, own_used)


def versus_command(args):
    """P(A beats B) at budgets or given N, D, and the budget where the two curves cross."""
    import bayescale

    if not (args.compute or args.at or args.crossover):
        raise bayescale.SpecError("versus needs --compute, --at or --crossover")
    fit_a = bayescale.load(args.fit_a)
    same = Path(args.fit_a).resolve() == Path(args.fit_b).resolve()
    fit_b = fit_a if same else bayescale.load(args.fit_b)  # one fit: pair the same draws
    pair = {"group_a": args.group_a, "group_b": args.group_b}
    options = _decision_options(args)
    beats = cross = None  # both computed before anything is printed, so errors come alone
    if args.compute or args.at:
        at = _targets(args.at) if args.at else None
        beats = bayescale.prob_beats(fit_a, fit_b, args.compute, at=at, **pair, **options)
    if args.crossover:
        cross = bayescale.crossover(fit_a, fit_b, tuple(args.crossover), **pair, **options)
    labels = [
        f"{name} = {path}" + (f" (group {group!r})" if group is not None else "")
        for name, path, group in (("A", args.fit_a, args.group_a), ("B", args.fit_b, args.group_b))
    ]
    print(f"{labels[0]}; {labels[1]}")
    reach = []
    if beats is not None:
        where = "at the given N, D" if args.at else "each at its own optimal allocation"
        print(f"P(A has the lower loss) and loss_A - loss_B, {where}:")
        _show(beats)
        reach += [beats["reach_a"], beats["reach_b"]]
    if cross is not None:
        print(
            f"\nBudget where the compute-optimal loss curves cross, in {args.crossover} (median "
            "and interval over the draws that cross; p_no_crossing: the share that do not):"
        )
        _show(cross.to_frame().T)
        reach += [cross[["reach_a", "reach_b"]]]
    own_used = _extrapolation_note(pd.concat(reach), args, "losses at budgets")
    _new_groups_note(beats if beats is not None else cross, fit_a, fit_b)
    return _status({f"fit {args.fit_a}": fit_a, f"fit {args.fit_b}": fit_b}, own_used)


def _unique_tokens_arg(parser):
    parser.add_argument(
        "--unique-tokens", type=float, help="U, the unique tokens available (data_constrained)"
    )


def _extrapolation_arg(parser):
    parser.add_argument(
        "--extrapolation",
        choices=CHOICES,
        default="calibrated",
        help="beyond the fitted range, add the extrapolation error learnt across real sweeps: "
        "calibrated (default; over N and D centred by a backtest inside the fit's own runs, "
        "one more fit unless the saved fit holds it), population (the real sweeps' alone), "
        "or none",
    )


def report_command(args):
    """Write a self-contained report of a saved fit: HTML, or Markdown with PNGs for ``.md``."""
    import bayescale
    from bayescale.io import writable
    from bayescale.report import write_report

    output = writable(args.output or Path(args.fit).with_suffix(".html"), "the report")
    labels = list(_by_file_name([args.fit, *args.compare]))
    fit = bayescale.load(args.fit)
    targets = _targets(args.target, "--target", fit.data.group) if args.target else None
    others = {label: bayescale.load(f) for label, f in zip(labels[1:], args.compare, strict=True)}
    path = write_report(
        fit,
        output,
        compare=others or None,
        targets=targets,
        ci=args.ci,
        name=labels[0],
        unique_tokens=args.unique_tokens,
        extrapolation=args.extrapolation,
    )
    print(f"report written to {path}")
    named = zip(args.compare, others.values(), strict=True)
    fits = {f"fit {args.fit}": fit} | {f"compared fit {f}": o for f, o in named}
    return _status(fits, own_used=args.extrapolation == "calibrated")


def laws_command(args):
    """List the registered laws with their inputs and parameters."""
    import bayescale

    for name in bayescale.laws():
        law = bayescale.get_law(name)
        print(
            f"{name:12s} inputs {', '.join(law.inputs):8s} parameters {', '.join(law.parameters)}"
        )
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse whose errors take one line, like every other error the commands report."""

    def error(self, message):
        """Print ``PROG: error: MESSAGE`` and exit with status 2 (no usage block)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None):
    """Entry point of the ``bayescale`` command."""
    parser = _Parser(prog="bayescale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="simulate a Chinchilla sweep, fit it, extrapolate 100x")
    _sampling_args(p_demo)
    p_demo.set_defaults(func=demo)
    p_fit = sub.add_parser("fit", help="fit a law to a CSV of training runs")
    p_fit.add_argument("csv")
    p_fit.add_argument(
        "--law", default="chinchilla", help='a law, with options: "broken_power_law(n_breaks=2)"'
    )
    _data_args(p_fit)
    _group_args(p_fit)
    p_fit.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="NAME=DIST(ARGS)",
        help="replace a default prior, e.g. 'alpha=Normal(mu=0.3, sigma=0.05)' or "
        "'alpha=Beta(2, 3)'",
    )
    p_fit.add_argument("--ci", type=float, default=0.9)
    p_fit.add_argument("--save", help="write the fit to this netCDF file")
    p_fit.add_argument("--quiet", action="store_true", help="no progress display while sampling")
    p_fit.set_defaults(func=fit_command)
    p_cmp = sub.add_parser("compare", help="compare saved fits of the same data by PSIS-LOO")
    p_cmp.add_argument("fits", nargs="+", metavar="FIT.nc", help="two or more `fit --save` files")
    p_cmp.set_defaults(func=compare_command)
    p_bt = sub.add_parser(
        "backtest", help="fit below a cut, score held-out runs against the field's baseline"
    )
    p_bt.add_argument("csv")
    p_bt.add_argument("--law", action="append", required=True, help="repeat for several laws")
    where = p_bt.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--split",
        action="append",
        metavar="COLUMN=CUT",
        help="fit rows with COLUMN <= CUT (repeat: all must hold), or a boolean column's name",
    )
    where.add_argument(
        "--reach",
        metavar="COLUMN=FACTOR",
        help="fit rows with COLUMN <= its largest value / FACTOR: backtest inside your runs "
        "the extrapolation you are about to make (e.g. --reach C=13)",
    )
    p_bt.add_argument(
        "--by",
        help="column whose held-out rows share errors (a run's checkpoints), resampled together",
    )
    p_bt.add_argument("--no-baseline", action="store_true", help="skip the Huber/L-BFGS baseline")
    p_bt.add_argument("--n-bootstrap", type=int, default=200, help="baseline bootstrap refits")
    p_bt.add_argument("--save-predictions", help="write held-out rows and intervals to this CSV")
    p_bt.add_argument("--quiet", action="store_true", help="no progress bar over the fits")
    p_bt.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="fit the laws as one batch on the Dask scheduler at ADDRESS (tcp://HOST:8786), "
        "or 'local' for a local cluster of one worker per core; default "
        "$BAYESCALE_DASK_ADDRESS if set, else one after another in this process",
    )
    _extrapolation_arg(p_bt)
    _data_args(p_bt)
    _group_args(p_bt)
    p_bt.set_defaults(func=backtest_command)
    p_sn = sub.add_parser(
        "sensitivity",
        help="refit a CSV under every law x likelihood x runs kept and re-answer D*/N* at a budget",
    )
    p_sn.add_argument("csv")
    p_sn.add_argument("--compute", type=float, required=True, metavar="C", help="the FLOP budget")
    p_sn.add_argument(
        "--law", action="append", help="repeat for several (default: chinchilla and kaplan)"
    )
    _likelihood_arg(p_sn, action="append")
    p_sn.add_argument(
        "--answer",
        default="tokens_per_param",
        choices=["tokens_per_param", "N_opt", "D_opt", "loss_opt"],
    )
    p_sn.add_argument("--ci", type=float, default=0.9)
    p_sn.add_argument("--flops-per-token", type=float, default=6.0, help="k in C = k N D")
    _unique_tokens_arg(p_sn)
    p_sn.add_argument("--quiet", action="store_true", help="no progress bar over the fits")
    p_sn.add_argument("--scheduler", metavar="ADDRESS", help="as for backtest")
    _column_args(p_sn)
    _sampling_args(p_sn)
    p_sn.set_defaults(func=sensitivity_command)
    p_pr = sub.add_parser("predict", help="predict from a saved fit, with intervals and reach")
    p_pr.add_argument("fit", metavar="FIT.nc")
    rows = p_pr.add_mutually_exclusive_group(required=True)
    rows.add_argument(
        "--at", action="append", metavar="NAME=VALUE,...", help='one row, e.g. "N=7e10,D=1.4e12"'
    )
    rows.add_argument("--csv", help="a CSV of rows to predict")
    p_pr.add_argument("--ci", type=float, default=0.9)
    p_pr.add_argument(
        "--kind",
        choices=["mean", "observed"],
        default="observed",
        help="observed (default here): a new run's loss, with its noise; mean: the law's value "
        "(the default of Python's fit.predict)",
    )
    p_pr.add_argument("--seed", type=int, default=None)
    _extrapolation_arg(p_pr)
    p_pr.set_defaults(func=predict_command)
    p_opt = sub.add_parser(
        "optimal", help="compute-optimal N*, D* and loss at FLOP budgets, as posteriors"
    )
    p_opt.add_argument("fit", metavar="FIT.nc")
    p_opt.add_argument(
        "--compute", type=float, nargs="+", required=True, metavar="C", help="FLOP budgets"
    )
    p_opt.add_argument("--group", help="a fitted group, or a new label for a new group")
    _decision_args(p_opt)
    p_opt.set_defaults(func=optimal_command)
    p_tg = sub.add_parser(
        "target", help="compute needed to reach target losses or accuracies, P(unreachable)"
    )
    p_tg.add_argument("fit", metavar="FIT.nc", help="a fit of the loss in N and D")
    goal = p_tg.add_mutually_exclusive_group(required=True)
    goal.add_argument("--loss", type=float, nargs="+", metavar="L", help="target losses")
    goal.add_argument(
        "--accuracy", type=float, nargs="+", metavar="A", help="target accuracies (with --via)"
    )
    p_tg.add_argument(
        "--via", metavar="ACCURACY_FIT.nc", help="a fit of accuracy on this loss ('downstream')"
    )
    p_tg.add_argument("--fixed-N", type=float, dest="fixed_N", help="hold the model size fixed")
    p_tg.add_argument("--group", help="a fitted group, or a new label for a new group")
    p_tg.add_argument(
        "--accuracy-group", help="with --via: the accuracy fit's group (a grouped accuracy fit)"
    )
    _decision_args(p_tg)
    p_tg.set_defaults(func=target_command)
    p_vs = sub.add_parser("versus", help="P(fit A beats fit B) at budgets; where they cross")
    p_vs.add_argument("fit_a", metavar="FIT_A.nc")
    p_vs.add_argument("fit_b", metavar="FIT_B.nc", help="the same file for two of its groups")
    where_vs = p_vs.add_mutually_exclusive_group()
    where_vs.add_argument(
        "--compute", type=float, nargs="+", metavar="C", help="FLOP budgets (optimal allocations)"
    )
    where_vs.add_argument(
        "--at", action="append", metavar="NAME=VALUE,...", help='one row, e.g. "N=7e10,D=1.4e12"'
    )
    p_vs.add_argument(
        "--crossover",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="the budget in [LO, HI] where the two compute-optimal loss curves cross",
    )
    p_vs.add_argument("--group-a")
    p_vs.add_argument("--group-b")
    _decision_args(p_vs)
    p_vs.set_defaults(func=versus_command)
    p_rep = sub.add_parser(
        "report", help="write a self-contained HTML (or Markdown) report of a saved fit"
    )
    p_rep.add_argument("fit", metavar="FIT.nc")
    p_rep.add_argument(
        "-o",
        "--output",
        metavar="REPORT.html",
        help="the report: .html (one file, figures inline) or .md (PNGs in a folder beside "
        "it); default FIT.html beside the fit",
    )
    p_rep.add_argument(
        "--compare",
        nargs="+",
        action="extend",
        default=[],
        metavar="OTHER.nc",
        help="fits of the same data to compare by PSIS-LOO (labelled by file name)",
    )
    p_rep.add_argument(
        "--target",
        action="append",
        metavar="NAME=VALUE,...",
        help='rows to predict, e.g. "N=7e10,D=1.4e12", or FLOP budgets alone, "C=1e23" '
        "(answered at the compute-optimal allocation)",
    )
    p_rep.add_argument("--ci", type=float, default=0.9)
    _unique_tokens_arg(p_rep)
    _extrapolation_arg(p_rep)
    p_rep.set_defaults(func=report_command)
    sub.add_parser("laws", help="list the scaling-law families").set_defaults(func=laws_command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0), or a bad argument already reported on one line
        return stop.code
    from bayescale.errors import BayescaleError, ConvergenceWarning

    def one_line(message, category, *_, **__):  # not Python's form, with its source line
        print(f"bayescale {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            # every command says itself when a fit failed its checks (the fit's
            # diagnostics, a WARNING line, exit status 1): the library's warning would
            # repeat it
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.showwarning = one_line
            return args.func(args)
    except BayescaleError as err:  # the message names the problem: no traceback needed
        print(f"bayescale {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (`bayescale laws | head -1`): say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as Python's docs do
        return 1


if __name__ == "__main__":
    sys.exit(main())
