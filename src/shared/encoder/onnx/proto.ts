/**
 * Serialises an OnnxGraph (graph.ts) into ONNX ModelProto bytes with `onnx-proto` (the ONNX protobuf
 * schema compiled for protobufjs). Weights go in as little-endian raw data.
 */
import onnxProto from 'onnx-proto';
import type { AttributeValue, OnnxGraph } from './graph.js';

const { onnx } = onnxProto;

/** IR version 7 is the one that goes with opset 13. */
const IR_VERSION = 7;

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  if (typeof value === 'string') return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...value] };
}

function rawLittleEndian(data: Float32Array): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

export function serialiseOnnxModel(graph: OnnxGraph, producerVersion: string): Uint8Array {
  const batch = { dimParam: 'batch' };
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'ood-audit',
    producerVersion,
    opsetImport: [{ domain: '', version: graph.opset }],
    graph: {
      name: 'encoder',
      node: graph.nodes.map((n) => ({
        opType: n.op,
        name: n.name,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attributes ?? {}).map(([k, v]) => attribute(k, v)),
      })),
      initializer: graph.initializers.map((t) => ({ name: t.name, dims: [...t.dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: rawLittleEndian(t.data) })),
      input: [
        {
          name: graph.input.name,
          type: { tensorType: { elemType: onnx.TensorProto.DataType.UINT8, shape: { dim: [batch, { dimValue: graph.input.size }, { dimValue: graph.input.size }, { dimValue: 3 }] } } },
        },
      ],
      output: [{ name: graph.output.name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [batch, { dimValue: graph.output.channels }] } } } }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
