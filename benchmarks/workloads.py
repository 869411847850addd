"""What the benchmarks time: real data read from ``../shared/data`` (never copied here).

A benchmark imports the package and this module only, not the tests or case studies, so
moving a test never breaks a benchmark.
"""

from pathlib import Path

import pandas as pd

CHINCHILLA_CSV = (
    Path(__file__).resolve().parents[2]
    / "shared/data/epoch_analyzing_chinchilla/svg_extracted_data.csv"
)
CHINCHILLA_INPUTS = {"N": "Model Size", "C": "Training FLOP"}


def chinchilla_runs():
    """Epoch's reconstruction of Chinchilla less its 5 highest losses: 240 runs.

    As Besiroglu et al. fitted it and ``case_studies/chinchilla_replication.py`` does.
    """
    if not CHINCHILLA_CSV.exists():
        raise SystemExit(f"real data not available: {CHINCHILLA_CSV} is missing (../shared/data)")
    df = pd.read_csv(CHINCHILLA_CSV)
    return df.sort_values("loss").iloc[:-5].reset_index(drop=True)
