/**
 * Per-row symmetric int8 quantisation: x ≈ q · scale with q in [-127, 127] and
 * scale = max|x| / 127. The int8 scan only preselects candidates; their final scores are
 * recomputed exactly in float32, so quantisation error can only cost recall, never accuracy.
 */
export function quantizeInto(src: Float32Array, dst: Int8Array | Int16Array): number {
  let max = 0;
  for (let i = 0; i < src.length; i++) {
    const a = Math.abs(src[i]!);
    if (a > max) max = a;
  }
  if (max === 0) {
    dst.fill(0, 0, src.length);
    return 0;
  }
  const scale = Math.fround(max / 127);
  const inv = 127 / max;
  for (let i = 0; i < src.length; i++) {
    const q = Math.round(src[i]! * inv);
    dst[i] = Math.min(127, Math.max(-127, q));
  }
  return scale;
}
