"""Read u2netp's weights out of an exported ONNX model (rembg's ``u2netp.onnx``).

The ONNX export of U^2-Net stores no batch-norm layers: the exporter folded each
batch norm into the convolution before it, so every ``REBNCONV`` is a ``Conv`` with
bias followed by ``Relu``. Only the side and fusion convolutions keep their torch names
(``side1.weight`` ... ``outconv.bias``); the folded ones are anonymous initialisers.
The loader therefore matches by *order*: the ``Conv`` nodes of the ONNX graph, in
graph order, are the convolutions of the torch module in the order its forward pass
calls them (what the tracing exporter recorded). Each pair is checked (weight and bias
shapes, dilation, padding, stride, and the name where the graph keeps one) before any
weight is copied, and the result is a :class:`~generators.u2net.model.U2Net` with
``batch_norm=False`` whose state dict then passes the strict key-and-shape check.
Only the ``onnx`` package is needed (no runtime); ``onnxruntime`` is used by the tests
to check the outputs agree.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from causalkit.errors import CausalKitError, DataError
from causalkit.weights import check_state_dict
from generators.u2net.model import KINDS, U2Net

__all__ = ["load_u2net_onnx", "conv_call_order"]


def conv_call_order(model: nn.Module) -> list[str]:
    """The names of ``model``'s ``Conv2d`` modules in the order its forward calls them."""
    names = {module: name for name, module in model.named_modules()
             if isinstance(module, nn.Conv2d)}
    order: list[str] = []
    hooks = [m.register_forward_pre_hook(lambda mod, _: order.append(names[mod]))
             for m in names]
    try:
        with torch.no_grad():
            model.forward_raw(torch.zeros(1, 3, 32, 32))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _read(path: Path):
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - onnx is a dependency
        raise CausalKitError("reading .onnx weights needs the 'onnx' package; "
                             "pip install onnx") from exc
    if not path.is_file():
        raise DataError(f"U^2-Net ONNX file {path} does not exist; pass the path of "
                        "u2netp.onnx")
    try:
        model = onnx.load(str(path))
    except Exception:  # protobuf's DecodeError and friends
        raise DataError(f"{path} is not an ONNX model (it does not parse); pass "
                        "u2netp.onnx, or a .pth state dict") from None
    graph = model.graph
    arrays = {init.name: init for init in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        inputs = list(node.input)
        if len(inputs) < 3 or inputs[1] not in arrays or inputs[2] not in arrays:
            raise DataError(f"{path}: Conv node {node.name or node.output[0]!r} has no "
                            "constant weight and bias; this is not an exported U^2-Net")
        convs.append((inputs[1], numpy_helper.to_array(arrays[inputs[1]]),
                      numpy_helper.to_array(arrays[inputs[2]]), attrs))
    return convs


def _fits(module: nn.Conv2d, weight, bias, attrs) -> bool:
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    return (tuple(weight.shape) == tuple(module.weight.shape)
            and tuple(bias.shape) == tuple(module.bias.shape)
            and list(attrs.get("dilations", [1, 1])) == list(module.dilation)
            and list(attrs.get("strides", [1, 1])) == list(module.stride)
            and pads == list(module.padding) * 2
            and int(attrs.get("group", 1)) == module.groups)


def load_u2net_onnx(path: str | os.PathLike, *, kind: str | None = None) -> U2Net:
    """A folded (no batch norm) :class:`U2Net` with the weights of the ONNX file ``path``.

    ``kind`` (``"u2netp"`` or ``"u2net"``) is found from the tensors' shapes when not
    given. Raises :class:`~causalkit.errors.DataError` for a file that is no ONNX model
    or holds another network, naming the first convolution that does not fit.
    """
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise CausalKitError(f"unknown U^2-Net kind {kind!r}; use one of {list(KINDS)}")
    convs = _read(path)
    problems = []
    for candidate in (kind,) if kind else KINDS:
        model = U2Net(candidate, batch_norm=False)
        modules = dict(model.named_modules())
        order = conv_call_order(model)
        if len(order) != len(convs):
            problems.append(f"{candidate} has {len(order)} convolutions, the file "
                            f"{len(convs)}")
            continue
        state, bad = {}, None
        for name, (init_name, weight, bias, attrs) in zip(order, convs, strict=True):
            named = not init_name[:1].isdigit() and not init_name.startswith("onnx::")
            if not _fits(modules[name], weight, bias, attrs) or (
                    named and init_name != f"{name}.weight"):
                bad = (f"{candidate}'s {name} {tuple(modules[name].weight.shape)} does not "
                       f"fit the file's Conv {init_name!r} {tuple(weight.shape)}")
                break
            state[f"{name}.weight"] = torch.from_numpy(weight.copy())
            state[f"{name}.bias"] = torch.from_numpy(bias.copy())
        if bad:
            problems.append(bad)
            continue
        check_state_dict(model, state, source=str(path), what=f"a folded {candidate}")
        model.load_state_dict(state, strict=True)
        return model.eval()
    raise DataError(f"{path} holds no U^2-Net this loader reads ({'; '.join(problems)}); "
                    "pass the u2netp.onnx export (batch norm folded) or a .pth state dict")
