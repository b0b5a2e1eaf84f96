"""mCE arithmetic against worked examples computed by hand from AlexNet's errors."""

from __future__ import annotations

import pytest

from analysis.benchmarks import mce
from analysis.benchmarks.corruptions import BENCHMARK, EXTRA
from causalkit.errors import CausalKitError

# AlexNet's mean error per corruption as printed in hendrycks/robustness and AugMix
# (ALEXNET_ERR), in the order of BENCHMARK: an independent check of the per-severity
# table's transcription.
PUBLISHED_MEANS = (0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360,
                   0.866816, 0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840,
                   0.606500)


def test_alexnet_table_matches_published_means():
    assert tuple(mce.ALEXNET_ERRORS) == BENCHMARK
    for name, published in zip(BENCHMARK, PUBLISHED_MEANS, strict=True):
        errs = mce.ALEXNET_ERRORS[name]
        assert len(errs) == 5
        assert sum(errs) / 5 == pytest.approx(published, abs=5e-7), name
    assert mce.ALEXNET_CLEAN_ERROR == pytest.approx(0.43478)


def test_alexnet_scores_one():
    r = mce.corruption_errors(mce.ALEXNET_ERRORS, mce.ALEXNET_CLEAN_ERROR)
    assert r.mce == pytest.approx(1.0) and r.relative_mce == pytest.approx(1.0)


def test_worked_example_one_corruption():
    # A model with errors 0.30..0.70 on gaussian noise and 0.24 on clean images.
    #   Σ_s E_s          = 0.30 + 0.40 + 0.50 + 0.60 + 0.70              = 2.50
    #   Σ_s E^AlexNet_s  = 0.69528 + 0.82542 + 0.93554 + 0.98138 + 0.99452 = 4.43214
    #   CE               = 2.50 / 4.43214                                 = 0.5640616
    #   Σ_s (E_s − 0.24) = 2.50 − 5 · 0.24                                = 1.30
    #   Σ_s (E^A_s − 0.43478) = 4.43214 − 5 · 0.43478 = 4.43214 − 2.17390 = 2.25824
    #   relative CE      = 1.30 / 2.25824                                 = 0.5756695
    r = mce.corruption_errors({"gaussian_noise": (0.30, 0.40, 0.50, 0.60, 0.70)}, 0.24,
                              require_all=False)
    assert r.ce["gaussian_noise"] == pytest.approx(0.5640616, abs=1e-7)
    assert r.relative_ce["gaussian_noise"] == pytest.approx(0.5756695, abs=1e-7)
    assert r.mce == pytest.approx(0.5640616, abs=1e-7)
    assert r.mean_error["gaussian_noise"] == pytest.approx(0.50)


def test_worked_example_full_mce():
    # AlexNet's own errors on 14 corruptions (CE = rCE = 1 each, clean error = AlexNet's)
    # and the errors above on gaussian noise:
    #   CE_gauss  = 2.50 / 4.43214                                    = 0.5640616
    #   rCE_gauss = (2.50 − 2.17390) / 2.25824 = 0.32610 / 2.25824       = 0.1444045
    #   mCE          = (14 + 0.5640616) / 15                           = 0.9709374
    #   relative mCE = (14 + 0.1444045) / 15                           = 0.9429603
    errors = dict(mce.ALEXNET_ERRORS)
    errors["gaussian_noise"] = (0.30, 0.40, 0.50, 0.60, 0.70)
    r = mce.corruption_errors(errors, mce.ALEXNET_CLEAN_ERROR)
    assert r.relative_ce["gaussian_noise"] == pytest.approx(0.1444045, abs=1e-7)
    assert r.mce == pytest.approx(0.9709374, abs=1e-7)
    assert r.relative_mce == pytest.approx(0.9429603, abs=1e-7)
    d = r.to_dict()
    assert d["mce"] == r.mce and set(d["ce"]) == set(BENCHMARK)


def test_extra_corruptions_reported_not_averaged():
    errors = dict(mce.ALEXNET_ERRORS)
    errors["spatter"] = (0.5, 0.6, 0.7, 0.8, 0.9)
    r = mce.corruption_errors(errors, mce.ALEXNET_CLEAN_ERROR)
    assert r.mce == pytest.approx(1.0)
    assert "spatter" not in r.ce and r.unnormalised == ("spatter",)
    assert r.mean_error["spatter"] == pytest.approx(0.7)
    assert set(EXTRA) >= set(r.unnormalised)


def test_bad_inputs():
    with pytest.raises(CausalKitError, match="missing shot_noise"):
        mce.corruption_errors({"gaussian_noise": (0.5,) * 5}, 0.2)
    with pytest.raises(CausalKitError, match="unknown corruption"):
        mce.corruption_errors({"rain": (0.5,) * 5}, 0.2, require_all=False)
    with pytest.raises(CausalKitError, match="expected 5 errors"):
        mce.corruption_errors({"fog": (0.5,) * 4}, 0.2, require_all=False)
    with pytest.raises(CausalKitError, match="not percentages"):
        mce.corruption_errors({"fog": (50.0,) * 5}, 0.2, require_all=False)
    with pytest.raises(CausalKitError, match="clean_error"):
        mce.corruption_errors(mce.ALEXNET_ERRORS, 43.5)
    with pytest.raises(CausalKitError, match="no benchmark corruption"):
        mce.corruption_errors({"spatter": (0.5,) * 5}, 0.2, require_all=False)
