"""Counterfactual data sets: uint8 storage, labels, noise held fixed, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from generators.cgn.counterfactuals import CounterfactualSet, generate_counterfactuals
from generators.cgn.mnist.abduction import abduct_counterfactuals
from generators.cgn.mnist.encoder import MnistCGNEncoder
from generators.cgn.mnist.model import MnistCGN


@pytest.fixture(scope="module")
def cgn():
    return MnistCGN(ngf=8, seed=0).eval()


def test_shapes_dtypes_and_roundtrip(cgn, tmp_path):
    s = generate_counterfactuals(cgn, 10, per_noise=3, seed=0, progress=False)
    assert s.images.dtype == np.uint8 and s.images.shape == (10, 3, 32, 32)
    assert s.labels().shape == (10, 3) and s.labels().max() < 10
    assert np.array_equal(np.bincount(s.group), [3, 3, 3, 1])
    s.save(tmp_path / "cf.npz")
    t = CounterfactualSet.load(tmp_path / "cf.npz")
    assert np.array_equal(t.images, s.images) and t.meta == s.meta
    again = generate_counterfactuals(cgn, 10, per_noise=3, seed=0, progress=False)
    assert np.array_equal(again.images, s.images)


def test_noise_is_held_fixed_within_a_group(cgn):
    same = generate_counterfactuals(cgn, 12, per_noise=3, randomise=(), progress=False)
    for g in range(4):
        imgs = same.images[same.group == g]
        assert all(np.array_equal(imgs[0], im) for im in imgs[1:])
    assert np.array_equal(same.shape, same.texture) and np.array_equal(same.shape,
                                                                       same.background)
    bg = generate_counterfactuals(cgn, 300, per_noise=3, randomise=("background",),
                                  progress=False)
    assert np.array_equal(bg.shape, bg.texture)
    assert not np.array_equal(bg.shape, bg.background)
    for g in range(3):  # one shape label per noise draw
        assert len(set(bg.shape[bg.group == g])) == 1


def test_bad_arguments(cgn):
    with pytest.raises(CausalKitError, match="unknown mechanism"):
        generate_counterfactuals(cgn, 4, randomise=("colour",), progress=False)
    with pytest.raises(CausalKitError, match=">= 1"):
        generate_counterfactuals(cgn, 0, progress=False)


def _real(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % 10


def test_abduction_keeps_each_real_digits_shape_and_redraws_the_rest(cgn):
    enc = MnistCGNEncoder(n_noise=1, seed=0)
    torch.nn.init.normal_(enc.head.weight, std=0.1)  # a posterior mean that depends on x
    x, y = _real()
    s = abduct_counterfactuals(cgn, enc, x, y, per_image=3, seed=1, progress=False)
    assert len(s) == 36 and s.meta["noise"] == "abducted"
    assert np.array_equal(s.shape, np.repeat(y, 3))  # the observed label is kept
    assert not np.array_equal(s.shape, s.texture) and not np.array_equal(s.shape,
                                                                         s.background)
    again = abduct_counterfactuals(cgn, enc, x, y, per_image=3, seed=1, progress=False)
    assert np.array_equal(again.images, s.images)
    # the shape noise comes from x: other images with the same labels, other masks
    x2 = np.roll(x, 5, axis=0)
    swapped = abduct_counterfactuals(cgn, enc, x2, y, per_image=3, seed=1, progress=False)
    assert not np.array_equal(swapped.images, s.images)


def test_abduction_rejects_bad_images(cgn):
    enc = MnistCGNEncoder(seed=0)
    x, y = _real()
    with pytest.raises(CausalKitError, match="uint8"):
        abduct_counterfactuals(cgn, enc, x.astype(np.float32), y, progress=False)
    with pytest.raises(CausalKitError, match="N labels"):
        abduct_counterfactuals(cgn, enc, x, y[:-1], progress=False)


# -- the intervention API against the option-driven path it replaced -------------------
# A copy of the assembly as it was before the CGN protocol (randomise strings, an
# abducted mask travelling as noise u["M"], real backgrounds as a flag), calling the
# MnistCGN's methods directly. The sets must stay byte-identical: they define the
# pipeline's tables.

_NAMES = {"shape": "Y1", "texture": "Y2", "background": "Y3"}


def _old_mechanism(fn, y, u, off=None, batch=500):
    y, u = torch.as_tensor(np.asarray(y)).long(), torch.as_tensor(np.asarray(u)).float()
    o = None if off is None else torch.as_tensor(np.asarray(off)).long()
    with torch.no_grad():
        return torch.cat([(fn(y[i:i + batch], u[i:i + batch]) if o is None else
                           fn(y[i:i + batch], u[i:i + batch], o[i:i + batch])).cpu()
                          for i in range(0, len(y), batch)])


def _old_path(cgn, n, per_noise, randomise, seed, chunk, real=None):
    """``real``: None (prior noise) or (images, labels, encoder, backgrounds, masks)."""
    from generators.cgn.mnist.colour import colour_masks
    from generators.cgn.mnist.real_backgrounds import RealBackgrounds
    from generators.images import to_float, to_uint8

    k, d, size = cgn.n_classes, cgn.latent_dim, cgn.img_size
    mask_all = real_bg = None
    if real is not None:
        x_all, y_all, enc, backgrounds, masks = real
        x_all = torch.as_tensor(x_all)
        mus = []
        starts = range(0, len(y_all), chunk)
        for s in starts:
            with torch.no_grad():
                mus.append(enc(to_float(x_all[s:s + chunk]),
                               torch.as_tensor(y_all[s:s + chunk]))[0])
        if backgrounds == "real" or masks == "colour":
            mask_all = torch.cat([_old_mechanism(cgn.shape, y_all[s:s + chunk], mu[:, 0])
                                  for s, mu in zip(starts, mus, strict=True)])
            if masks == "colour":
                mask_all = colour_masks(x_all, torch.as_tensor(y_all), mask_all, k)
            if backgrounds == "real":
                real_bg = RealBackgrounds(x_all, y_all, mask_all, k)
    else:
        starts = range(0, -(-n // per_noise), chunk)
    out = {key: [] for key in ("images", "shape", "texture", "background", "group")}
    for c, start in enumerate(starts):
        rng = np.random.default_rng(np.random.SeedSequence([seed, c]))
        m = min(chunk, (len(y_all) if real else -(-n // per_noise)) - start)
        u = {v: rng.standard_normal((m, d)).astype(np.float32) for v in ("U1", "U2", "U3")}
        u.update({v: rng.integers(0, size, (m, 2)) for v in ("F", "B")})
        if real is None:
            y1 = rng.integers(0, k, m)
        else:
            y1 = y_all[start:start + m]
            mu = mus[c]
            u.update({f"U{i + 1}": mu[:, i].numpy() for i in range(mu.shape[1])})
        bg_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
        if mask_all is not None and real[4] == "colour":
            mask = mask_all[start:start + m]
        else:
            mask = _old_mechanism(cgn.shape, y1, u["U1"])
        fg = _old_mechanism(cgn.texture, y1, u["U2"], u["F"])
        bg = _old_mechanism(cgn.background, y1, u["U3"], u["B"])
        for _ in range(per_noise):
            labels = {name: (rng.integers(0, k, m) if name in randomise else y1)
                      for name in _NAMES}
            mk = mask if "shape" not in randomise else _old_mechanism(
                cgn.shape, labels["shape"], u["U1"])
            f = fg if "texture" not in randomise else _old_mechanism(
                cgn.texture, labels["texture"], u["U2"], u["F"])
            b = bg if "background" not in randomise else _old_mechanism(
                cgn.background, labels["background"], u["U3"], u["B"])
            if real_bg is not None:
                b = real_bg.draw(labels["background"], b, bg_rng)
            out["images"].append(to_uint8(mk * f + (1 - mk) * b).numpy())
            for name in _NAMES:
                out[name].append(np.asarray(labels[name], np.int64))
            out["group"].append(np.arange(start, start + m))
    arrays = {key: np.concatenate(v) for key, v in out.items()}
    order = np.argsort(arrays["group"], kind="stable")[:n]
    return {key: v[order] for key, v in arrays.items()}


def _same(new, old):
    assert all(np.array_equal(getattr(new, key), old[key]) for key in old)


@pytest.mark.parametrize("randomise,per_noise,chunk", [
    ((), 1, 1000), (("texture", "background"), 3, 4), (("shape",), 2, 5),
    (("shape", "texture", "background"), 3, 1000), (("background",), 1, 3)])
def test_prior_counterfactuals_are_those_of_the_old_path(cgn, randomise, per_noise, chunk):
    new = generate_counterfactuals(cgn, 14, per_noise=per_noise, randomise=randomise, seed=5,
                                   chunk=chunk, progress=False)
    _same(new, _old_path(cgn, 14, per_noise, randomise, 5, chunk))


@pytest.mark.parametrize("randomise,backgrounds,masks,n_noise", [
    (("texture", "background"), "generated", "cgn", 1), (("shape",), "real", "cgn", 3),
    (("texture", "background"), "real", "colour", 1), (("texture",), "generated", "colour", 2),
    ((), "real", "colour", 1)])
def test_abducted_counterfactuals_are_those_of_the_old_path(cgn, randomise, backgrounds,
                                                            masks, n_noise):
    enc = MnistCGNEncoder(n_noise=n_noise, seed=0)
    torch.nn.init.normal_(enc.head.weight, std=0.1, generator=torch.Generator().manual_seed(1))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    y = np.arange(20) % 10
    new = abduct_counterfactuals(cgn, enc, x, y, per_image=2, randomise=randomise, seed=3,
                                 chunk=7, backgrounds=backgrounds, masks=masks, progress=False)
    _same(new, _old_path(cgn, 40, 2, randomise, 3, 7, real=(x, y, enc, backgrounds, masks)))
    assert new.meta == {"n": 40, "per_noise": 2, "randomise": sorted(randomise), "seed": 3,
                        "noise": "abducted", "backgrounds": backgrounds, "masks": masks}


def test_do_and_draw_on_the_nodes_are_the_front_ends(cgn):
    from causalkit.interventions import Do, Draw
    from generators.cgn.counterfactuals import abducted_counterfactuals
    from generators.cgn.mnist.abduction import abduct, abducted_masks
    from generators.cgn.mnist.real_backgrounds import RealBackgrounds

    front = generate_counterfactuals(cgn, 12, per_noise=3, seed=2, progress=False)
    draws = {y: Draw(cgn.label_nodes[y].sample) for y in ("Y2", "Y3")}
    nodes = generate_counterfactuals(cgn, 12, per_noise=3, randomise=(), interventions=draws,
                                     seed=2, progress=False)
    assert np.array_equal(front.images, nodes.images)
    assert np.array_equal(front.labels(), nodes.labels())

    enc = MnistCGNEncoder(n_noise=1, seed=0)
    torch.nn.init.normal_(enc.head.weight, std=0.1)
    x, y = _real(20)
    ab = abduct(cgn, enc, x, y)
    masks = torch.zeros(20, 1, 32, 32)
    masks[..., 8:24, 10:20] = 1.0  # any abducted mask: a box
    real = RealBackgrounds(x, y, abducted_masks(cgn, ab), cgn.n_classes)
    s = abducted_counterfactuals(cgn, ab, per_image=4, seed=1, progress=False,
                                 interventions={"M": Do(masks), "B": real.intervention()})
    again = abducted_counterfactuals(cgn, ab, per_image=4, seed=1, progress=False,
                                     interventions={"M": Do(masks), "B": real.intervention()})
    assert np.array_equal(s.images, again.images)
    plain = abducted_counterfactuals(cgn, ab, per_image=4, seed=1, progress=False)
    assert np.array_equal(s.labels(), plain.labels())  # the same labels, other images
    assert not np.array_equal(s.images, plain.images)
    # the mask is the Do's: inside the box only the texture shows, whatever the background
    box = abducted_counterfactuals(cgn, ab, per_image=4, seed=1, progress=False,
                                   interventions={"M": Do(masks)})
    assert np.array_equal(s.images[..., 8:24, 10:20], box.images[..., 8:24, 10:20])
    assert not np.array_equal(s.images[..., :8, :], box.images[..., :8, :])


def test_a_set_is_the_scms_counterfactual(cgn):
    from causalkit.interventions import Do
    from causalkit.scm import Samples
    from generators.cgn.scm import cgn_scm
    from generators.images import to_uint8

    s = generate_counterfactuals(cgn, 6, randomise=(), interventions={"Y3": Do(4)}, seed=9,
                                 progress=False)
    assert np.all(s.background == 4) and np.array_equal(s.shape, s.texture)
    rng = np.random.default_rng(np.random.SeedSequence([9, 0]))  # chunk 0's stream
    noise = {v: e.sample(6, rng) for v, e in cgn.noise_nodes.items()}
    y = cgn.label_nodes["Y1"].sample(6, rng)
    base = Samples({}, {**noise, "Y1": y, "Y2": y, "Y3": y}, 6)
    cf = cgn_scm(cgn).counterfactual(base, do={"Y3": Do(4)})
    assert np.array_equal(to_uint8(cf["X"]).numpy(), s.images)


def test_interventions_are_checked(cgn):
    from causalkit.interventions import Do
    from generators.cgn.counterfactuals import Abduction, abducted_counterfactuals

    y = np.arange(6) % 10
    with pytest.raises(CausalKitError, match="other lengths"):
        Abduction(y, {"U1": np.zeros((5, 32), np.float32)})
    with pytest.raises(CausalKitError, match="unknown node"):
        abducted_counterfactuals(cgn, Abduction(y, {"U7": np.zeros((6, 32))}), progress=False)
    with pytest.raises(CausalKitError, match="unknown node"):
        generate_counterfactuals(cgn, 4, interventions={"Z": Do(1)}, progress=False)
    with pytest.raises(CausalKitError, match="number of base samples, 4"):
        generate_counterfactuals(cgn, 4, interventions={"M": Do(torch.zeros(3, 1, 32, 32),
                                                                per_sample=True)},
                                 progress=False)
    # a per-sample value has one entry per base sample, shared by its counterfactuals:
    # where the mask is 0 the redrawn texture never shows, where it is 1 it always does
    masks = torch.zeros(4, 1, 32, 32)
    masks[2:] = 1.0
    s = generate_counterfactuals(cgn, 40, per_noise=10, randomise=("texture",),
                                 interventions={"M": Do(masks)}, progress=False,
                                 meta={"masks": "given"})
    assert s.meta["masks"] == "given" and len(set(s.texture)) > 1
    for g in range(4):
        imgs, tex = s.images[s.group == g], s.texture[s.group == g]
        same = [np.array_equal(imgs[0], im) for im in imgs[1:]]
        assert all(same) if g < 2 else not all(same) and len(set(tex)) > 1
