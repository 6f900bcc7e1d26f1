/** Packs decoded RGB images into a float NHWC batch with the encoder's input normalisation. */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import type { Preprocessing } from './encoder.js';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** Must be called inside tf.tidy: returns a [n, size, size, 3] float32 tensor. */
export function toEncoderInput(images: readonly Uint8Array[], size: number, pre: Preprocessing): tf.Tensor4D {
  const per = size * size * 3;
  const packed = new Float32Array(images.length * per);
  images.forEach((img, i) => {
    if (img.length !== per) {
      throw new OodError('SHAPE_MISMATCH', `image ${i} in batch: expected ${per} bytes (${size}x${size}x3), got ${img.length}`);
    }
    packed.set(img, i * per);
  });
  const x = tf.tensor4d(packed, [images.length, size, size, 3]);
  switch (pre.kind) {
    case 'symmetric':
      return tf.sub(tf.div(x, 127.5), 1);
    case 'unit':
      return tf.div(x, 255);
    case 'imagenet':
      return tf.div(tf.sub(tf.div(x, 255), tf.tensor1d(IMAGENET_MEAN)), tf.tensor1d(IMAGENET_STD));
    case 'raw':
      return x;
  }
}
