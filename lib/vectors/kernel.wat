;; Exact scan kernels for vector search, WebAssembly SIMD128.
;; Built into lib/vectors/kernel-wasm.ts by scripts/build-wasm.mjs; spec/vectors/kernel.spec.ts
;; checks the committed bytes match this source.
;;
;; The summation order below is part of the contract: lib/vectors/kernel.ts has a plain
;; TypeScript fallback that performs the same float32 operations in the same order, so both
;; paths return bit-identical scores. Change one, change the other.
(module
  (import "env" "memory" (memory 1))

  ;; out[i] = dot(mat[i], q) over rows of `dpad` float32 (dpad % 4 == 0, rows zero-padded).
  ;; Four f32x4 accumulators take 16 floats per step; the tail (dpad % 16) goes to the first.
  (func (export "dot_f32")
    (param $mat i32) (param $q i32) (param $out i32) (param $n i32) (param $dpad i32)
    (local $i i32) (local $j i32) (local $row i32) (local $rowBytes i32) (local $end16 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s v128)
    (local.set $rowBytes (i32.shl (local.get $dpad) (i32.const 2)))
    (local.set $end16 (i32.and (local.get $rowBytes) (i32.const -64)))
    (local.set $row (local.get $mat))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $a1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $a3 (v128.const i64x2 0 0))
        (local.set $j (i32.const 0))
        (block $b16
          (loop $l16
            (br_if $b16 (i32.ge_u (local.get $j) (local.get $end16)))
            (local.set $a0 (f32x4.add (local.get $a0)
              (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $j)))
                         (v128.load (i32.add (local.get $q) (local.get $j))))))
            (local.set $a1 (f32x4.add (local.get $a1)
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $row) (local.get $j)))
                         (v128.load offset=16 (i32.add (local.get $q) (local.get $j))))))
            (local.set $a2 (f32x4.add (local.get $a2)
              (f32x4.mul (v128.load offset=32 (i32.add (local.get $row) (local.get $j)))
                         (v128.load offset=32 (i32.add (local.get $q) (local.get $j))))))
            (local.set $a3 (f32x4.add (local.get $a3)
              (f32x4.mul (v128.load offset=48 (i32.add (local.get $row) (local.get $j)))
                         (v128.load offset=48 (i32.add (local.get $q) (local.get $j))))))
            (local.set $j (i32.add (local.get $j) (i32.const 64)))
            (br $l16)))
        (block $b4
          (loop $l4
            (br_if $b4 (i32.ge_u (local.get $j) (local.get $rowBytes)))
            (local.set $a0 (f32x4.add (local.get $a0)
              (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $j)))
                         (v128.load (i32.add (local.get $q) (local.get $j))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $l4)))
        (local.set $s (f32x4.add (f32x4.add (local.get $a0) (local.get $a1))
                                 (f32x4.add (local.get $a2) (local.get $a3))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 1 (local.get $s)))
            (f32.add (f32x4.extract_lane 2 (local.get $s)) (f32x4.extract_lane 3 (local.get $s)))))
        (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; out[i] = f32(dot(mat[i], q)) * scales[i] over int8 rows of `dpad` bytes (dpad % 16 == 0).
  ;; `q` holds the query already widened to int16 (2*dpad bytes), so each step widens only the row.
  ;; Integer sums are exact, so the order here does not matter for results.
  (func (export "dot_i8")
    (param $mat i32) (param $q i32) (param $scales i32) (param $out i32) (param $n i32) (param $dpad i32)
    (local $i i32) (local $j i32) (local $row i32) (local $qp i32) (local $r v128)
    (local $lo v128) (local $hi v128) (local $s v128)
    (local.set $row (local.get $mat))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $lo (v128.const i64x2 0 0))
        (local.set $hi (v128.const i64x2 0 0))
        (local.set $j (i32.const 0))
        (local.set $qp (local.get $q))
        (block $bj
          (loop $lj
            (br_if $bj (i32.ge_u (local.get $j) (local.get $dpad)))
            (local.set $r (v128.load (i32.add (local.get $row) (local.get $j))))
            (local.set $lo (i32x4.add (local.get $lo)
              (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $r)) (v128.load (local.get $qp)))))
            (local.set $hi (i32x4.add (local.get $hi)
              (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $r)) (v128.load offset=16 (local.get $qp)))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (local.set $qp (i32.add (local.get $qp) (i32.const 32)))
            (br $lj)))
        (local.set $s (i32x4.add (local.get $lo) (local.get $hi)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32.mul
            (f32.convert_i32_s
              (i32.add
                (i32.add (i32x4.extract_lane 0 (local.get $s)) (i32x4.extract_lane 1 (local.get $s)))
                (i32.add (i32x4.extract_lane 2 (local.get $s)) (i32x4.extract_lane 3 (local.get $s)))))
            (f32.load (i32.add (local.get $scales) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $row (i32.add (local.get $row) (local.get $dpad)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; out[i] = dot(mat[sel[i]], q) for i < count: dot_f32 over the rows listed (int32 row numbers)
  ;; at `sel`, so a filtered search reads only the rows it selects. Same summation as dot_f32.
  (func (export "dot_f32_rows")
    (param $mat i32) (param $sel i32) (param $count i32) (param $q i32) (param $out i32) (param $dpad i32)
    (local $i i32) (local $j i32) (local $row i32) (local $rowBytes i32) (local $end16 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s v128)
    (local.set $rowBytes (i32.shl (local.get $dpad) (i32.const 2)))
    (local.set $end16 (i32.and (local.get $rowBytes) (i32.const -64)))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $row (i32.add (local.get $mat)
          (i32.mul (i32.load (i32.add (local.get $sel) (i32.shl (local.get $i) (i32.const 2))))
                   (local.get $rowBytes))))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $a1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $a3 (v128.const i64x2 0 0))
        (local.set $j (i32.const 0))
        (block $b16
          (loop $l16
            (br_if $b16 (i32.ge_u (local.get $j) (local.get $end16)))
            (local.set $a0 (f32x4.add (local.get $a0)
              (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $j)))
                         (v128.load (i32.add (local.get $q) (local.get $j))))))
            (local.set $a1 (f32x4.add (local.get $a1)
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $row) (local.get $j)))
                         (v128.load offset=16 (i32.add (local.get $q) (local.get $j))))))
            (local.set $a2 (f32x4.add (local.get $a2)
              (f32x4.mul (v128.load offset=32 (i32.add (local.get $row) (local.get $j)))
                         (v128.load offset=32 (i32.add (local.get $q) (local.get $j))))))
            (local.set $a3 (f32x4.add (local.get $a3)
              (f32x4.mul (v128.load offset=48 (i32.add (local.get $row) (local.get $j)))
                         (v128.load offset=48 (i32.add (local.get $q) (local.get $j))))))
            (local.set $j (i32.add (local.get $j) (i32.const 64)))
            (br $l16)))
        (block $b4
          (loop $l4
            (br_if $b4 (i32.ge_u (local.get $j) (local.get $rowBytes)))
            (local.set $a0 (f32x4.add (local.get $a0)
              (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $j)))
                         (v128.load (i32.add (local.get $q) (local.get $j))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $l4)))
        (local.set $s (f32x4.add (f32x4.add (local.get $a0) (local.get $a1))
                                 (f32x4.add (local.get $a2) (local.get $a3))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 1 (local.get $s)))
            (f32.add (f32x4.extract_lane 2 (local.get $s)) (f32x4.extract_lane 3 (local.get $s)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; out[i] = f32(dot(mat[sel[i]], q)) * scales[sel[i]] for i < count: dot_i8 over the listed rows.
  (func (export "dot_i8_rows")
    (param $mat i32) (param $sel i32) (param $count i32) (param $q i32) (param $scales i32) (param $out i32)
    (param $dpad i32)
    (local $i i32) (local $j i32) (local $r32 i32) (local $row i32) (local $qp i32) (local $r v128)
    (local $lo v128) (local $hi v128) (local $s v128)
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $r32 (i32.load (i32.add (local.get $sel) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $row (i32.add (local.get $mat) (i32.mul (local.get $r32) (local.get $dpad))))
        (local.set $lo (v128.const i64x2 0 0))
        (local.set $hi (v128.const i64x2 0 0))
        (local.set $j (i32.const 0))
        (local.set $qp (local.get $q))
        (block $bj
          (loop $lj
            (br_if $bj (i32.ge_u (local.get $j) (local.get $dpad)))
            (local.set $r (v128.load (i32.add (local.get $row) (local.get $j))))
            (local.set $lo (i32x4.add (local.get $lo)
              (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $r)) (v128.load (local.get $qp)))))
            (local.set $hi (i32x4.add (local.get $hi)
              (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $r)) (v128.load offset=16 (local.get $qp)))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (local.set $qp (i32.add (local.get $qp) (i32.const 32)))
            (br $lj)))
        (local.set $s (i32x4.add (local.get $lo) (local.get $hi)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32.mul
            (f32.convert_i32_s
              (i32.add
                (i32.add (i32x4.extract_lane 0 (local.get $s)) (i32x4.extract_lane 1 (local.get $s)))
                (i32.add (i32x4.extract_lane 2 (local.get $s)) (i32x4.extract_lane 3 (local.get $s)))))
            (f32.load (i32.add (local.get $scales) (i32.shl (local.get $r32) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; Sum of `count` float32 (count % 16 == 0): a plain sequential read, the bandwidth probe's yardstick.
  (func (export "sum_f32") (param $p i32) (param $count i32) (result f32)
    (local $end i32) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $count) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a0 (f32x4.add (local.get $a0) (v128.load (local.get $p))))
        (local.set $a1 (f32x4.add (local.get $a1) (v128.load offset=16 (local.get $p))))
        (local.set $a2 (f32x4.add (local.get $a2) (v128.load offset=32 (local.get $p))))
        (local.set $a3 (f32x4.add (local.get $a3) (v128.load offset=48 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $l)))
    (local.set $s (f32x4.add (f32x4.add (local.get $a0) (local.get $a1))
                             (f32x4.add (local.get $a2) (local.get $a3))))
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 1 (local.get $s)))
      (f32.add (f32x4.extract_lane 2 (local.get $s)) (f32x4.extract_lane 3 (local.get $s))))))
