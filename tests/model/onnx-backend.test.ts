import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  floatTensor,
  fromFloat16,
  Graph,
  int64Tensor,
  readFloat32,
  readInt64,
  supportedProviders,
  toFloat16,
} from '../../src/model/onnx-backend.ts';
import { ModelDisposedError } from '../../src/model/errors.ts';
import { TINY_BUNDLE } from './helpers.ts';

describe('float16 conversion', () => {
  it('converts exactly representable values both ways', () => {
    const values = Float32Array.from([0, -0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 1 + 2 ** -10]);
    const bits = toFloat16(values);
    assert.deepEqual([...bits.subarray(0, 4)], [0x0000, 0x8000, 0x3c00, 0xc000]);
    assert.equal(bits[5], 0x7bff);
    assert.equal(bits[8], 0x0001, 'smallest subnormal');
    assert.deepEqual([...fromFloat16(bits)], [...values]);
  });

  it('rounds to nearest even, overflows to infinity, keeps NaN', () => {
    const bits = toFloat16(Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000, -Infinity, Number.NaN, 2 ** -26]));
    assert.equal(bits[0], 0x3c00, 'tie rounds down to even');
    assert.equal(bits[1], 0x3c02, 'tie rounds up to even');
    assert.equal(bits[2], 0x7c00);
    assert.equal(bits[3], 0xfc00);
    assert.ok(Number.isNaN(fromFloat16(bits.subarray(4, 5))[0]));
    assert.equal(bits[5], 0, 'below half the smallest subnormal');
  });

  it('makes float16 tensors from float32 values', () => {
    const tensor = floatTensor('float16', Float32Array.from([1.5, -3]), [2]);
    assert.equal(tensor.type, 'float16');
    assert.deepEqual([...readFloat32(tensor)], [1.5, -3]);
  });
});

describe('Graph', () => {
  it('lists this build’s providers, CPU among them', () => {
    assert.ok(supportedProviders().some((p) => p.name === 'cpu'));
  });

  it('introspects ports, runs, times the run, and refuses runs after dispose', async () => {
    const graph = await Graph.open(join(TINY_BUNDLE, 'vq_decoder.onnx'), { intraOpThreads: 1 }, 'vq');
    assert.deepEqual(graph.inputs, [{ name: 'codes', type: 'int64', shape: ['batch', 64] }]);
    const { outputs, ms } = await graph.run({ codes: int64Tensor(new Array(64).fill(3), [1, 64]) });
    assert.deepEqual(outputs.pixels?.dims, [1, 3, 64, 64]);
    assert.ok(ms > 0);
    assert.deepEqual(readInt64(int64Tensor([5, -1], [2])), [5, -1]);
    await graph.dispose();
    await assert.rejects(graph.run({}), ModelDisposedError);
  });
});
