"""ImageNet-C corruptions: each checked against the reference formula of
hendrycks/robustness ``make_imagenet_c.py``, plus shape, determinism and severity order."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2hsv
from skimage.data import chelsea

from analysis.benchmarks import corruptions as C
from causalkit.errors import CausalKitError, DataError

ALL = C.BENCHMARK + C.EXTRA
P = {"frost_source": "procedural"}


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    """skimage's chelsea, resized (short side 224) and centre-cropped to 224x224."""
    im = Image.fromarray(chelsea()).resize((298, 224), Image.BILINEAR)
    return np.asarray(im)[:, 37:261].copy()


def grey(level: int, size=(224, 224)) -> np.ndarray:
    return np.full(size + (3,), level, np.uint8)


def rmse(a, b) -> float:
    return float(np.sqrt(((a.astype(float) - b.astype(float)) ** 2).mean()))


def test_names_and_categories():
    assert len(C.BENCHMARK) == 15 and len(C.EXTRA) == 4
    grouped = [n for k in ("noise", "blur", "weather", "digital") for n in C.CATEGORIES[k]]
    assert sorted(grouped) == sorted(C.BENCHMARK)
    assert C.CATEGORIES["extra"] == C.EXTRA


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_determinism(cat, name):
    a = C.corrupt(cat, name, 3, seed=7, **P)
    assert a.shape == cat.shape and a.dtype == np.uint8
    assert np.array_equal(a, C.corrupt(cat, name, 3, seed=7, **P))
    assert not np.array_equal(a, cat)
    # a non-square, non-224 image works too
    odd = np.asarray(Image.fromarray(cat).resize((301, 157)))
    b = C.corrupt(odd, name, 5, seed=1, **P)
    assert b.shape == odd.shape and b.dtype == np.uint8


@pytest.mark.parametrize("name", [n for n in ALL if n not in
                                  ("brightness", "contrast", "saturate", "pixelate",
                                   "jpeg_compression", "gaussian_blur", "defocus_blur",
                                   "zoom_blur")])
def test_seed_changes_random_corruptions(cat, name):
    assert not np.array_equal(C.corrupt(cat, name, 4, seed=0, **P),
                              C.corrupt(cat, name, 4, seed=1, **P))


def test_bad_input_messages(cat):
    with pytest.raises(CausalKitError, match="valid names: gaussian_noise"):
        C.corrupt(cat, "gaussian", 1, seed=0)
    for bad in (0, 6, 2.0, True):
        with pytest.raises(CausalKitError, match="severity must be an integer 1..5"):
            C.corrupt(cat, "fog", bad, seed=0)
    with pytest.raises(CausalKitError, match="uint8 RGB"):
        C.corrupt(cat.astype(np.float32), "fog", 1, seed=0)
    with pytest.raises(CausalKitError, match="uint8 RGB"):
        C.corrupt(cat[..., 0], "fog", 1, seed=0)
    with pytest.raises(CausalKitError, match="too small"):
        C.corrupt(cat[:20, :20], "fog", 1, seed=0)
    with pytest.raises(CausalKitError, match="frost_source"):
        C.corrupt(cat, "frost", 1, seed=0, frost_source="web")


# ------------------------------------------------------------------ noise statistics

@pytest.mark.parametrize("severity,c", [(1, 0.08), (2, 0.12), (3, 0.18)])
def test_gaussian_noise_statistics(severity, c):
    x = grey(128)
    out = C.corrupt(x, "gaussian_noise", severity, seed=severity)
    # uint8 truncation: out = floor(255 * (x + n)) -> n ~ (out + 0.5) / 255 - x
    noise = (out + 0.5) / 255 - 128 / 255
    assert abs(noise.mean()) < 0.002
    assert noise.std() == pytest.approx(c, rel=0.02)


@pytest.mark.parametrize("severity,c", [(1, 60), (3, 12), (5, 3)])
def test_shot_noise_is_poisson(severity, c):
    from scipy.stats import poisson

    level = 77
    out = C.corrupt(grey(level), "shot_noise", severity, seed=0)
    lam = level / 255 * c
    counts = np.round(out / 255 * c)  # out = floor(255 min(k, c) / c), k ~ Poisson(x c)
    k = np.arange(0, c + 1)
    pmf = poisson.pmf(k, lam)
    pmf[-1] += poisson.sf(c, lam)  # the reference clips k / c at 1
    mean = (k * pmf).sum()
    var = (k * k * pmf).sum() - mean ** 2
    assert counts.mean() == pytest.approx(mean, rel=0.02)
    assert counts.var() == pytest.approx(var, rel=0.05)


@pytest.mark.parametrize("severity,amount", [(1, 0.03), (5, 0.27)])
def test_impulse_noise_fraction(severity, amount):
    out = C.corrupt(grey(100), "impulse_noise", severity, seed=0)
    salt, pepper = (out == 255).mean(), (out == 0).mean()
    assert salt + pepper == pytest.approx(amount, rel=0.03)
    assert salt == pytest.approx(pepper, rel=0.1)
    assert set(np.unique(out)) == {0, 100, 255}


@pytest.mark.parametrize("severity,c", [(1, 0.15), (2, 0.2)])
def test_speckle_noise_scales_with_intensity(severity, c):
    x = grey(64)
    out = C.corrupt(x, "speckle_noise", severity, seed=0)
    rel = ((out + 0.5) / 255 - 64 / 255) / (64 / 255)
    assert rel.std() == pytest.approx(c, rel=0.03)
    assert abs(rel.mean()) < 0.01


# ----------------------------------------------------------------- formula checks

@pytest.mark.parametrize("severity,c", enumerate((0.4, 0.3, 0.2, 0.1, 0.05), 1))
def test_contrast_formula(cat, severity, c):
    x = cat / 255.0
    m = x.mean(axis=(0, 1), keepdims=True)
    want = (np.clip((x - m) * c + m, 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(C.corrupt(cat, "contrast", severity, seed=0), want)


@pytest.mark.parametrize("severity,c", [(1, 0.1), (3, 0.3)])
def test_brightness_adds_to_hsv_value(cat, severity, c):
    out = C.corrupt(cat, "brightness", severity, seed=0)
    v0, v1 = rgb2hsv(cat)[..., 2], rgb2hsv(out)[..., 2]
    room = v0 < 1 - c - 0.02
    assert np.abs(v1[room] - v0[room] - c).max() < 0.01
    assert np.all(v1[~room] > 1 - c - 0.03)


@pytest.mark.parametrize("severity,mul", [(1, 0.3), (3, 2.0)])
def test_saturate_scales_hsv_saturation(cat, severity, mul):
    out = C.corrupt(cat, "saturate", severity, seed=0)
    hsv0, hsv1 = rgb2hsv(cat), rgb2hsv(out)
    ok = (hsv0[..., 2] > 0.2) & (hsv0[..., 1] * mul < 0.95) & (hsv0[..., 1] > 0.05)
    assert np.median(np.abs(hsv1[..., 1][ok] - mul * hsv0[..., 1][ok])) < 0.01


@pytest.mark.parametrize("severity,quality", enumerate((25, 18, 15, 10, 7), 1))
def test_jpeg_quality(cat, severity, quality):
    buf = io.BytesIO()
    Image.fromarray(cat).save(buf, "JPEG", quality=quality)
    want = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(C.corrupt(cat, "jpeg_compression", severity, seed=0), want)


@pytest.mark.parametrize("severity,c", enumerate((0.6, 0.5, 0.4, 0.3, 0.25), 1))
def test_pixelate_box_factor(cat, severity, c):
    small = Image.fromarray(cat).resize((int(224 * c), int(224 * c)), Image.BOX)
    want = np.asarray(small.resize((224, 224), Image.BOX))
    assert np.array_equal(C.corrupt(cat, "pixelate", severity, seed=0), want)


@pytest.mark.parametrize("severity,sigma", [(1, 1), (5, 6)])
def test_gaussian_blur_sigma(cat, severity, sigma):
    want = ndimage.gaussian_filter(cat / 255.0, (sigma, sigma, 0), mode="nearest")
    want = (np.clip(want, 0, 1) * 255).astype(np.uint8)
    assert np.abs(C.corrupt(cat, "gaussian_blur", severity, seed=0).astype(int)
                  - want).max() <= 1


def test_defocus_disk_kernel_and_fft_filter(cat):
    k = C._disk(6, 0.5)
    assert k.shape == (17, 17) and k.sum() == pytest.approx(1.0)
    assert k[8, 8] > 0 and k[8, 8 + 8] < 1e-6  # zero two pixels outside the radius
    assert C._disk(10, 0.5).shape == (21, 21)
    x = cat[:48, :40] / 255.0
    direct = np.stack([ndimage.correlate(x[..., i], k, mode="mirror") for i in range(3)], -1)
    assert np.abs(C._filter2d_reflect101(x, k) - direct).max() < 1e-9


def test_motion_blur_matches_imagemagick_definition():
    rng = np.random.default_rng(0)
    x = rng.random((12, 14))
    radius, sigma, angle = 3, 2.0, 30.0
    width = 7
    w = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    w /= w.sum()
    want = np.zeros_like(x)
    a = np.deg2rad(angle)
    for r in range(12):
        for c in range(14):
            for i in range(width):
                ox = int(np.ceil(i * np.cos(a) - 0.5))
                oy = int(np.ceil(i * np.sin(a) - 0.5))
                want[r, c] += w[i] * x[min(max(r + oy, 0), 11), min(max(c + ox, 0), 13)]
    assert np.allclose(C._motion_blur_array(x, radius, sigma, angle), want)


@pytest.mark.parametrize("shape,factor", [((224, 224, 3), 1.3), ((157, 301, 3), 1.07),
                                          ((224, 224, 1), 4.5), ((64, 48, 1), 2.5)])
def test_clipped_zoom_equals_scipy_zoom(shape, factor):
    """The separable form equals the reference: scipy zoom (order 1) + centre trim."""
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    h, w = shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    z = ndimage.zoom(x[top:top + ch, left:left + cw], (factor, factor, 1), order=1)
    tt, tl = (z.shape[0] - h) // 2, (z.shape[1] - w) // 2
    want = z[tt:tt + h, tl:tl + w]
    got = C._clipped_zoom(x, factor)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-5


def test_zoom_blur_identity_and_constant():
    x = np.random.default_rng(0).random((40, 50, 3))
    assert np.allclose(C._clipped_zoom(x, 1.0), x)
    out = C.corrupt(grey(90), "zoom_blur", 5, seed=0)
    assert np.abs(out.astype(int) - 90).max() <= 1


def test_fog_formula_recovers_plasma():
    """out = (x + c·P)·max/(max + c); P is the same map for any image at one seed."""
    c = 2.5
    maps = []
    for level in (100, 180):
        out = C.corrupt(grey(level), "fog", 3, seed=5)
        g = level / 255
        maps.append(((out + 0.5) / 255 * (g + c) / g - g) / c)
    assert np.abs(maps[0] - maps[1]).max() < 0.05
    assert maps[0].min() > -0.02 and maps[0].max() < 1.02
    assert maps[0].max() - maps[0].min() > 0.4
    pm = C._plasma_fractal(np.random.default_rng(0), 256, 2.0)
    assert pm.min() == 0 and pm.max() == 1


def test_frost_blends_texture(cat):
    """out = c0·x + c1·frost (clipped), with the same frost crop for every image."""
    black = C.corrupt(np.zeros_like(cat), "frost", 2, seed=3, **P)
    out = C.corrupt(cat, "frost", 2, seed=3, **P)
    want = np.clip(0.8 * cat + black.astype(float), 0, 255)
    assert np.abs(out - want).max() <= 1.5
    assert black.std() > 5  # a texture, not a flat tint


def test_frost_auto_falls_back_with_warning(monkeypatch, tmp_path, cat):
    monkeypatch.setenv("CAUSALKIT_FROST_DIR", str(tmp_path))  # empty: no reference files
    with pytest.warns(UserWarning, match="procedural frost"):
        assert C.frost_texture_source("auto") == "procedural"
    with pytest.raises(DataError, match="CAUSALKIT_FROST_DIR"):
        C.corrupt(cat, "frost", 1, seed=0, frost_source="reference")


def test_frost_reference_textures_if_present(cat):
    paths = C._reference_frost_paths(download=False)
    if paths is None:
        pytest.skip("reference frost photographs not cached; set CAUSALKIT_FROST_DIR")
    assert C.frost_texture_source("reference") == "reference"
    out = C.corrupt(cat, "frost", 5, seed=0, frost_source="reference")
    assert out.shape == cat.shape


def test_snow_and_spatter_brighten_or_cover(cat):
    snow = C.corrupt(cat, "snow", 3, seed=0)
    assert snow.astype(float).mean() > cat.mean() + 20
    water = C.corrupt(cat, "spatter", 1, seed=0)   # adds pale turquoise
    mud = C.corrupt(cat, "spatter", 5, seed=0)     # covers with brown
    assert water.astype(float).mean() >= cat.mean()
    changed = np.any(mud != cat, axis=-1)
    assert 0.01 < changed.mean() < 0.9


@pytest.mark.parametrize("sigma", [2.44, 19.52, 170.8])
def test_fft_gaussian_equals_scipy_reflect(sigma):
    x = np.random.default_rng(0).uniform(-1, 1, (224, 190))
    want = ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=3)
    assert np.abs(C._gaussian_reflect_fft(x, sigma, 3) - want).max() < 1e-9


def test_elastic_moves_pixels_smoothly(cat):
    out = C.corrupt(cat, "elastic_transform", 1, seed=0)
    assert rmse(out, cat) > 5
    # a geometric warp keeps the colour histogram roughly
    assert abs(out.astype(float).mean() - cat.mean()) < 8


# ------------------------------------------------------------------------ glass blur

def _reference_glass_loop(x, delta, offsets):
    """Literal transcription of the reference loop, numpy views included."""
    x = x.copy()
    h, w = x.shape[:2]
    for r in range(h - delta, delta, -1):
        for c in range(w - delta, delta, -1):
            dy, dx = offsets[r - delta - 1, c - delta - 1]
            r2, c2 = r + dy, c + dx
            x[r, c], x[r2, c2] = x[r2, c2], x[r, c]
    return x


@pytest.mark.parametrize("delta,shape", [(1, (20, 23)), (2, (24, 24)), (4, (33, 29))])
def test_glass_shuffle_equals_reference_loop(delta, shape):
    rng = np.random.default_rng(delta)
    h, w = shape
    x = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    src = np.arange(h * w)
    want = x
    for _ in range(3):
        off = C._glass_offsets(rng, h, w, delta)
        want = _reference_glass_loop(want, delta, off)
        src = src[C._glass_shuffle(h, w, delta, off)]
    got = x.reshape(-1, 3)[src].reshape(x.shape)
    assert np.array_equal(got, want)


# ---------------------------------------------------------------- severity ordering

MONOTONE_RMSE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                 "defocus_blur", "motion_blur", "zoom_blur", "gaussian_blur",
                 "brightness", "contrast", "pixelate", "jpeg_compression")


@pytest.mark.parametrize("name", MONOTONE_RMSE)
def test_severity_monotone_in_rmse(cat, name):
    d = [rmse(C.corrupt(cat, name, s, seed=0), cat) for s in C.SEVERITIES]
    assert all(a < b for a, b in zip(d, d[1:], strict=False)), d


@pytest.mark.parametrize("name", ("frost", "fog", "glass_blur"))
def test_severity_monotone_in_correlation(cat, name):
    """Frost and fog replace image content: correlation with the clean image falls."""
    def corr(s):
        vals = [np.corrcoef(C.corrupt(cat, name, s, seed=k, **P).ravel().astype(float),
                            cat.ravel().astype(float))[0, 1] for k in range(3)]
        return float(np.mean(vals))
    r = [corr(s) for s in C.SEVERITIES]
    if name == "glass_blur":  # severity 1 shuffles twice, severity 2 once (reference)
        assert r[0] > r[2] > r[4], r
    else:
        assert all(a > b for a, b in zip(r, r[1:], strict=False)), r


def test_image_seed_distinct_and_stable():
    a = C.image_seed(0, 1, "fog", 3)
    assert a == C.image_seed(0, 1, "fog", 3)
    others = {C.image_seed(0, 2, "fog", 3), C.image_seed(0, 1, "frost", 3),
              C.image_seed(0, 1, "fog", 4), C.image_seed(1, 1, "fog", 3)}
    assert a not in others and len(others) == 4


def test_no_warning_with_explicit_source(cat):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.corrupt(cat, "frost", 1, seed=0, **P)
