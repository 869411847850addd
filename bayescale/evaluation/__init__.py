"""What is done with fitted posteriors: scores, backtests, comparison, averaging, SBC.

Also the two-stage (loss, then accuracy) prediction and the field's Huber baseline, which
backtests score beside the Bayesian fits.
"""
