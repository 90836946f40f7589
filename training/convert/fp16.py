"""float32 → float16 rewrite of an exported ONNX graph, with float32 islands where float16 is unsafe.

Policy (what HF transformers does in float16 inference, expressed on the graph):
* weights with ≥ 2 dimensions are stored in float16; matrix products (MatMul, Gemm, Conv) run in float16;
* reductions and transcendental ops run in float32: Softmax, ReduceMean, ReduceL2, Pow, Sqrt, Reciprocal, Exp, Log,
  Cos, Sin, Range, LayerNormalization, InstanceNormalization (RMSNorm's variance, attention's softmax, RoPE tables,
  l2 normalisation, GroupNorm);
* every other op follows type promotion: float32 if any of its computed float inputs is float32, else float16;
  constants and 1-D weights (biases, norm scales) adopt the dtype their consumer runs in (clamped to ±65504 when
  they become float16, so the −1e9 mask constant can never turn into −inf);
* the graph's float inputs and outputs become float16 (the manifest's `dtype: "float16"` contract: pixels, features,
  logits and KV caches), with a Cast where the producer is a float32 island.
The attention mask therefore stays float32 up to the softmax: scores are upcast before the mask is added, so fully
masked rows (left padding) stay finite.
"""
from typing import Dict, Iterable, Optional, Set

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
KEEP_FP32 = {"Softmax", "ReduceMean", "ReduceL2", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Cos", "Sin", "Range",
             "LayerNormalization", "InstanceNormalization", "ReduceSum", "Erf"}
COMPUTE_FP16 = {"MatMul", "Gemm", "Conv"}
# inputs that are float but never data (stay float32 whatever the node runs in)
FIXED_FP32_INPUTS = {"Resize": {1, 2}}
# ops whose float inputs/outputs are unrelated to each other (Cast produces its `to` type)
PASSTHROUGH_INT = {"Shape", "Size", "NonZero", "ArgMax", "ArgMin", "Equal", "Greater", "Less", "GreaterOrEqual",
                   "LessOrEqual", "Not", "And", "Or"}
FP16_MAX = 65504.0


def _is_float_tensor(t: TensorProto) -> bool:
    return t.data_type == F32


def convert_model(model: onnx.ModelProto, keep_io_fp32: Iterable[str] = ()) -> onnx.ModelProto:
    g = model.graph
    keep_io = set(keep_io_fp32)
    inits: Dict[str, TensorProto] = {t.name: t for t in g.initializer}
    # ---- classify sources
    dtype: Dict[str, int] = {}           # value name → F32 / F16 for computed float values
    flexible: Dict[str, np.ndarray] = {}  # value name → float32 array (constants, 1-D weights)
    for t in g.initializer:
        if _is_float_tensor(t):
            arr = numpy_helper.to_array(t)
            if arr.ndim >= 2:
                dtype[t.name] = F16
            else:
                flexible[t.name] = arr
    for vi in g.input:
        if vi.type.tensor_type.elem_type == F32 and vi.name not in inits:
            dtype[vi.name] = F32 if vi.name in keep_io else F16

    new_nodes = []
    new_inits: Dict[str, TensorProto] = {}
    cast_cache: Dict[tuple, str] = {}
    used_names: Set[str] = set(inits) | {o for n in g.node for o in n.output} | {i.name for i in g.input}

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in used_names:
            k += 1
            name = f"{base}_{k}"
        used_names.add(name)
        return name

    def flex_as(name: str, want: int) -> str:
        arr = flexible[name]
        if want == F32:
            if name in inits or name in new_inits:
                return name
            key = (name, F32)
            if key not in cast_cache:
                cast_cache[key] = fresh(name + "__f32")
                new_inits[cast_cache[key]] = numpy_helper.from_array(arr.astype(np.float32), cast_cache[key])
            return cast_cache[key]
        key = (name, F16)
        if key not in cast_cache:
            cast_cache[key] = fresh(name + "__f16")
            a16 = np.clip(arr.astype(np.float32), -FP16_MAX, FP16_MAX).astype(np.float16)
            new_inits[cast_cache[key]] = numpy_helper.from_array(a16, cast_cache[key])
        return cast_cache[key]

    def value_as(name: str, want: int) -> str:
        if name in flexible:
            return flex_as(name, want)
        have = dtype.get(name)
        if have is None or have == want:
            return name
        key = (name, want)
        if key not in cast_cache:
            out = fresh(f"{name}__{'f16' if want == F16 else 'f32'}")
            src = name
            if want == F16:  # clamp computed values so that nothing becomes ±inf
                lo, hi = flex_as_const(-FP16_MAX), flex_as_const(FP16_MAX)
                clipped = fresh(name + "__clip")
                new_nodes.append(helper.make_node("Clip", [name, lo, hi], [clipped], name=fresh("clip_" + name)))
                src = clipped
            new_nodes.append(helper.make_node("Cast", [src], [out], to=want, name=fresh("cast_" + name)))
            cast_cache[key] = out
        return cast_cache[key]

    def flex_as_const(v: float) -> str:
        key = ("__const__", v)
        if key not in cast_cache:
            cast_cache[key] = fresh(f"fp16_bound_{'neg' if v < 0 else 'pos'}")
            new_inits[cast_cache[key]] = numpy_helper.from_array(np.array(v, dtype=np.float32), cast_cache[key])
        return cast_cache[key]

    for node in g.node:
        op = node.op_type
        if op == "Constant":
            attr = {a.name: a for a in node.attribute}
            if "value" in attr and attr["value"].t.data_type == F32:
                flexible[node.output[0]] = numpy_helper.to_array(attr["value"].t)
                continue  # materialised on demand by its consumers
            new_nodes.append(node)
            continue
        if op == "Cast":
            to = next(a.i for a in node.attribute if a.name == "to")
            if to == F32:
                src = node.input[0]
                if src in flexible:  # Cast of a float constant: stays flexible
                    flexible[node.output[0]] = flexible[src]
                    continue
                dtype[node.output[0]] = F32
                if dtype.get(src) == F16:  # a float16 value cast to float: keep the float32 intent
                    pass
            new_nodes.append(node)
            continue
        if op == "ConstantOfShape":
            attr = {a.name: a for a in node.attribute}
            if "value" in attr and attr["value"].t.data_type == F32:
                dtype[node.output[0]] = F32
            elif "value" not in attr:
                dtype[node.output[0]] = F32
            new_nodes.append(node)
            continue
        fixed = FIXED_FP32_INPUTS.get(op, set())
        float_ins = [i for k, i in enumerate(node.input) if i and k not in fixed and (i in dtype or i in flexible)]
        if op in PASSTHROUGH_INT or not float_ins:
            # int/bool outputs, or no float data: inputs as they are (float inputs of comparisons: keep their type,
            # unifying mixed ones to float32)
            if op in PASSTHROUGH_INT and float_ins:
                kinds = {dtype.get(i) for i in float_ins if i not in flexible}
                want = F32 if (F32 in kinds or not kinds) else F16
                ins = [value_as(i, want) if (i in dtype or i in flexible) and k not in fixed else i
                       for k, i in enumerate(node.input)]
                del node.input[:]
                node.input.extend(ins)
            for k, i in enumerate(node.input):
                if k in fixed and i in flexible:
                    node.input[k] = flex_as(i, F32)
            new_nodes.append(node)
            continue
        if op in KEEP_FP32:
            want = F32
        elif op in COMPUTE_FP16:
            want = F16
        else:
            kinds = {dtype[i] for i in float_ins if i not in flexible}
            want = F32 if (F32 in kinds or not kinds) else F16
        ins = []
        for k, i in enumerate(node.input):
            if not i or (i not in dtype and i not in flexible):
                ins.append(i)
            elif k in fixed:
                ins.append(value_as(i, F32) if i in flexible else i)
            else:
                ins.append(value_as(i, want))
        del node.input[:]
        node.input.extend(ins)
        for o in node.output:
            dtype[o] = want
        new_nodes.append(node)

    # ---- graph outputs: float16 unless kept
    out_nodes = []
    for vo in g.output:
        if vo.type.tensor_type.elem_type != F32:
            continue
        want = F32 if vo.name in keep_io else F16
        have = dtype.get(vo.name, F32)
        if have != want:
            inner = fresh(vo.name + "__inner")
            for n in new_nodes:
                for k, o in enumerate(n.output):
                    if o == vo.name:
                        n.output[k] = inner
                for k, i in enumerate(n.input):
                    if i == vo.name:
                        n.input[k] = inner
            src = inner
            if want == F16:
                clipped = fresh(vo.name + "__clip")
                out_nodes.append(helper.make_node("Clip", [inner, flex_as_const(-FP16_MAX), flex_as_const(FP16_MAX)],
                                                  [clipped], name=fresh("clip_out")))
                src = clipped
            out_nodes.append(helper.make_node("Cast", [src], [vo.name], to=want, name=fresh("cast_out")))
        vo.type.tensor_type.elem_type = want
    for vi in g.input:
        if vi.type.tensor_type.elem_type == F32 and vi.name not in inits and vi.name not in keep_io:
            vi.type.tensor_type.elem_type = F16

    # ---- initializers: ≥2-D float weights to float16 (clamped); 1-D/scalars dropped unless still referenced as is
    referenced = {i for n in new_nodes + out_nodes for i in n.input}
    kept = []
    for t in g.initializer:
        if _is_float_tensor(t):
            arr = numpy_helper.to_array(t)
            if arr.ndim >= 2:
                a16 = np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)
                kept.append(numpy_helper.from_array(a16, t.name))
            elif t.name in referenced:
                kept.append(t)
        else:
            kept.append(t)
    kept.extend(t for name, t in new_inits.items() if name in referenced)
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.node[:]
    g.node.extend(new_nodes + out_nodes)
    del g.value_info[:]
    return model


def convert_file(src: str, dst: Optional[str] = None, keep_io_fp32: Iterable[str] = (),
                 external_threshold: int = int(1.8e9)) -> None:
    """Rewrites an ONNX file (external data included) as float16; large results get one external-data file."""
    import os
    dst = dst or src
    model = onnx.load(src, load_external_data=True)
    model = convert_model(model, keep_io_fp32)
    size = sum(t.ByteSize() for t in model.graph.initializer)
    data = os.path.basename(dst) + ".data"
    data_path = os.path.join(os.path.dirname(dst), data)
    if os.path.exists(data_path):
        os.remove(data_path)
    if size > external_threshold:
        onnx.save_model(model, dst, save_as_external_data=True, all_tensors_to_one_file=True, location=data,
                        size_threshold=1024)
    else:
        onnx.save_model(model, dst)
