"""Write the small data sets on which Testing/reference/stats_reference.R computes reference values.

    python Testing/reference/make_datasets.py && Rscript Testing/reference/stats_reference.R

The CSVs are committed; the R script's printed values are pasted into
Testing/core/test_stats_reference.py (R 4.2.2, pROC 1.18.0, epiR 2.0.57 from Debian bookworm).
"""

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261124)

# ROC, paired: 90 lesions, two measures of the same lesions (SUVmax-like, rounded so that ties occur)
truth = np.r_[np.ones(50, int), np.zeros(40, int)]
latent = rng.normal(0, 1, 90) + 1.1 * truth
a = np.round(np.exp(1.6 + 0.45 * latent), 1)
b = np.round(np.exp(1.5 + 0.35 * (0.7 * latent + 0.7 * rng.normal(0, 1, 90))), 1)
with open(os.path.join(HERE, "roc_paired.csv"), "w") as handle:
    handle.write("truth,a,b\n")
    handle.writelines(f"{t},{x},{y}\n" for t, x, y in zip(truth, a, b))

# ROC, a second, unpaired set of 60 lesions
truth2 = np.r_[np.ones(25, int), np.zeros(35, int)]
c = np.round(np.exp(1.5 + 0.5 * (rng.normal(0, 1, 60) + 0.8 * truth2)), 1)
with open(os.path.join(HERE, "roc_unpaired.csv"), "w") as handle:
    handle.write("truth,score\n")
    handle.writelines(f"{t},{x}\n" for t, x in zip(truth2, c))

# agreement: 45 lesions measured twice (PET/MR reads about 8 % lower with scatter)
x = np.round(np.exp(rng.normal(2.0, 0.6, 45)), 2)
y = np.round(x * np.exp(rng.normal(-0.08, 0.12, 45)), 2)
with open(os.path.join(HERE, "agreement.csv"), "w") as handle:
    handle.write("x,y\n")
    handle.writelines(f"{u},{v}\n" for u, v in zip(x, y))
