"""The numba versions of `neurodecorr.kernels` (imported on the first kernel call, so that a
process that never runs one does not pay numba's import). Each is the numpy version in
`kernels` as one loop; see that module for what each computes and why one thread."""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from neurodecorr.kernels import (
    _ATANH,
    _COS,
    _F16_MIN_NORMAL_BITS,
    _F16_OVERFLOW_BITS,
    _F16_SUB_STEP,
    _GOLDEN,
    _HALF,
    _INF_BITS,
    _INV256,
    _LN2,
    _LOW8,
    _LOW24,
    _M1,
    _M2,
    _MANTISSA,
    _ONE,
    _ONE_BITS,
    _QUARTER,
    _S8,
    _S27,
    _S30,
    _S31,
    _S40,
    _SIN,
    _SQRT2,
    _TO_UNIT,
    _TWO,
    MIN_STEP,
)

_A3, _A5, _A7, _A9 = _ATANH
_S3, _S5, _S7, _S9, _S11 = _SIN
_C2, _C4, _C6, _C8, _C10, _C12 = _COS
_MINUS_TWO = np.float32(-2)

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")  # no zero-division checks: SIMD


@numba.njit(inline="always", cache=True)
def _nb_mix(z):
    """splitmix64's finaliser, as `kernels._mix`."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@intrinsic
def _nb_abs_bits(typingctx, x):
    """|x| of a float32 as its bit pattern, a uint32: these order as the non-negative floats
    they are, and a NaN's lie above +inf's."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], ir.IntType(32))
        return builder.and_(bits, ir.Constant(ir.IntType(32), 0x7FFFFFFF))
    return types.uint32(types.float32), codegen


@intrinsic
def _nb_from_bits(typingctx, u):
    """The float32 whose bit pattern is the uint32 u."""
    if u != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.uint32), codegen


@numba.njit(inline="always", cache=True)
def _nb_uniform(key, i):
    z = np.uint64(i) * _GOLDEN + key
    z = _nb_mix(z)
    return np.float32(z >> _S40) * _TO_UNIT


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_normal_pair(key, p):
    # draw p's two standard normals, r·cos θ and r·sin θ of one u and θ (Box–Muller in float32
    # arithmetic alone: a loop of these vectorises), as `kernels._np_normal_pairs` forms them
    z = _nb_mix(np.uint64(p) * _GOLDEN + key)
    top = np.float32(np.int32(z >> _S40))
    low = np.float32(np.int32((z >> np.uint64(32)) & _LOW8))
    u = (top + (low + _HALF) * _INV256) * _TO_UNIT
    bits = _nb_abs_bits(u)
    e = np.float32(np.int32(bits >> np.uint32(23)) - np.int32(127))
    m = _nb_from_bits(np.uint32((bits & _MANTISSA) | _ONE_BITS))
    big = m > _SQRT2
    m = m * _HALF if big else m
    e = e + _ONE if big else e
    s = (m - _ONE) / (m + _ONE)
    s2 = s * s
    log_m = _TWO * s * (_ONE + s2 * (_A3 + s2 * (_A5 + s2 * (_A7 + s2 * _A9))))
    r = np.sqrt(_MINUS_TWO * (e * _LN2 + log_m))
    angle = np.int32((z >> _S8) & _LOW24)
    quadrant = angle >> np.int32(22)
    f = np.float32(angle & np.int32(0x3FFFFF)) * _QUARTER
    f2 = f * f
    sin = f * (_ONE + f2 * (_S3 + f2 * (_S5 + f2 * (_S7 + f2 * (_S9 + f2 * _S11)))))
    cos = _ONE + f2 * (_C2 + f2 * (_C4 + f2 * (_C6 + f2 * (_C8 + f2 * (_C10 + f2 * _C12)))))
    odd = (quadrant & np.int32(1)) != 0
    c = sin if odd else cos  # cos(q·π/2 + f)
    c = -c if ((quadrant + np.int32(1)) & np.int32(2)) != 0 else c
    sn = cos if odd else sin  # sin(q·π/2 + f)
    sn = -sn if (quadrant & np.int32(2)) != 0 else sn
    return r * c, r * sn


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_normal(key, i):
    # element i's standard normal, as `kernels._np_normals_at` forms it: in each block of 32
    # elements, element l < 16 takes draw 16q + l's cosine and element 16 + l its sine
    i = np.uint64(i)
    c, sn = _nb_normal_pair(key, (i >> np.uint64(5)) * np.uint64(16) + (i & np.uint64(15)))
    return sn if (i & np.uint64(16)) != 0 else c


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_fill_normals(key, start, out, count, scale):
    # out[k] = normal(start + k)·scale for k < count: the whole blocks of 32 a pair at a time
    # (both of a draw's normals: 0.93 against 1.54 ns a normal one at a time), the ends alone
    start, count = np.uint64(start), np.uint64(count)
    head = min((np.uint64(32) - (start & np.uint64(31))) & np.uint64(31), count)
    for k in range(head):
        out[k] = _nb_normal(key, start + np.uint64(k)) * scale
    blocks = (count - head) >> np.uint64(5)
    first = (start + head) >> np.uint64(5)  # the first whole block
    for q in range(blocks):
        b = head + np.uint64(q) * np.uint64(32)
        p = (first + np.uint64(q)) * np.uint64(16)
        for lane in range(16):
            c, sn = _nb_normal_pair(key, p + np.uint64(lane))
            out[b + np.uint64(lane)] = c * scale
            out[b + np.uint64(16 + lane)] = sn * scale
    for k in range(head + blocks * np.uint64(32), count):
        out[k] = _nb_normal(key, start + np.uint64(k)) * scale


@_jit
def _nb_normals(key, out, scale):
    _nb_fill_normals(key, 0, out, out.size, scale)


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_adc(p, bound, step):
    p = -bound if p < -bound else p
    p = bound if p > bound else p
    return np.rint(p / step) * step


@_jit
def _nb_adc_sum(parts, var, per_entry, sd0, var0, factor, inv_scale, bound, step, row_scale, key, out):
    # parts (T, B, N); var (T, B, N) (per_entry), (T, B, 1) or empty (sd0 for every entry);
    # tiles outside, each output's digitised tiles added in tile order from 0 (the inner loops
    # vectorise), then each row times row_scale (empty: none)
    n_tiles, rows, n = parts.shape
    has_var = var.size > 0
    xi = np.empty(n, np.float32)  # one row's normals
    for b in range(rows):
        for j in range(n):
            out[b, j] = np.float32(0)
    for t in range(n_tiles):
        for b in range(rows):
            _nb_fill_normals(key, (t * rows + b) * n, xi, n, np.float32(1))
            if per_entry:
                for j in range(n):
                    s = np.sqrt(var[t, b, j] + var0) * factor
                    out[b, j] += _nb_adc(parts[t, b, j] * inv_scale + s * xi[j], bound, step)
            else:
                s = np.sqrt(var[t, b, 0] + var0) * factor if has_var else sd0
                for j in range(n):
                    out[b, j] += _nb_adc(parts[t, b, j] * inv_scale + s * xi[j], bound, step)
    if row_scale.size > 0:
        for b in range(rows):
            f = row_scale[b]
            for j in range(n):
                out[b, j] *= f


_CHUNK = 4096  # normals drawn at once into a scratch that stays in the L1 cache


@_jit
def _nb_add_noise(W, sd, scale, key, out):
    xi = np.empty(_CHUNK, np.float32)
    for c in range((W.size + _CHUNK - 1) // _CHUNK):
        c0 = c * _CHUNK
        m = min(_CHUNK, W.size - c0)
        _nb_fill_normals(key, c0, xi, m, np.float32(1))
        for k in range(m):
            out[c0 + k] = W[c0 + k] + (scale * sd[c0 + k]) * xi[k]


@_jit
def _nb_dac(x, levels, bound_step, xq, peak, squares):
    rows, cols = x.shape
    flat = x.reshape(-1)
    want = squares.size > 0
    for r in range(rows):
        top = _nb_peak_range(flat, flat, r * cols, (r + 1) * cols, np.float32(0), False)
        if top == 0:
            top = np.float32(1)
        peak[r, 0] = top
        for c in range(cols):
            v = x[r, c] / top
            v = np.float32(-1) if v < -1 else (np.float32(1) if v > 1 else v)
            q = np.rint(v * levels) * bound_step
            xq[r, c] = q
            if want:
                squares[r, c] = q * q


@_jit
def _nb_adam(g, m, v, b1, b2, lr_t, eps_t, W, apply):
    c1, c2 = np.float32(1) - b1, np.float32(1) - b2
    changed = 0
    for i in range(g.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i] = mi
        v[i] = vi
        step = (mi / (np.sqrt(vi) + eps_t)) * lr_t
        g[i] = step
        changed += step != 0
        if apply:
            W[i] -= step
    return changed


@_jit
def _nb_leaky(h, out, slope):
    for i in range(h.size):
        x = h[i]
        y = x * slope
        out[i] = x if x > y else y


@_jit
def _nb_leaky_back(h, signal, slope):
    for i in range(h.size):
        x = h[i]
        signal[i] *= np.float32(1) if x > 0 else (slope if x <= 0 else x)  # NaN stays NaN


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_round(s, lo, hi, key, i, stochastic):
    """s rounded (to nearest, or stochastically with element i's uniform), clipped to [lo, hi]."""
    if stochastic:
        low = np.floor(s)
        r = low + (np.float32(1) if _nb_uniform(key, i) < s - low else np.float32(0))
    else:
        r = np.rint(s)
    r = lo if r < lo else r  # two selects in turn: they vectorise where a nested pair did not
    return hi if r > hi else r


@_jit
def _nb_to_grid(x, out, step, lo, hi, key, stochastic):
    for i in range(x.size):
        out[i] = _nb_round(x[i] / step, lo, hi, key, i, stochastic) * step


@_jit
def _nb_half(a, scale, out):
    # every case formed and one kept by selects on |y|'s bits, so that the loop vectorises
    for i in range(a.size):
        y = a[i] * scale
        b = _nb_abs_bits(y)
        sub = np.rint(y / _F16_SUB_STEP) * _F16_SUB_STEP  # float16's subnormals: one fixed spacing
        # the 23-bit mantissa to float16's 10 bits, to nearest, ties to even
        normal = _nb_from_bits(np.uint32((b + np.uint32(0x0FFF) + ((b >> np.uint32(13)) & np.uint32(1)))
                                         & np.uint32(0xFFFFE000)))
        normal = -normal if y < 0 else normal
        big = np.float32(np.inf) if y > 0 else np.float32(-np.inf)  # what float16 cannot hold
        r = y if b > _INF_BITS else big  # a NaN stays
        r = normal if b < _F16_OVERFLOW_BITS else r
        r = sub if b < _F16_MIN_NORMAL_BITS else r
        out[i] = r / scale


@_jit
def _nb_accumulate(acc, change, step, limit, n, divisor):
    for i in range(acc.size):
        a = acc[i] + change[i] / divisor
        k = np.trunc(a / step)
        if k < -limit:
            k = -limit
        elif k > limit:
            k = limit
        if k != 0:
            a -= k * step
        acc[i] = a
        n[i] = k


@_jit
def _nb_pulse_counts(change, step, per_device, limit, key, n, divisor):
    # n = stochastic_round((change / divisor) / max(step, MIN_STEP)), clipped to ±limit
    # (`_nb_round`'s draw i)
    for i in range(change.size):
        s = step[i] if per_device else step[0]
        n[i] = _nb_round(change[i] / divisor / (s if s > MIN_STEP else MIN_STEP), -limit, limit, key, i, True)


_BLOCK = 128  # devices a pulse kernel checks for pulses at once


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_block_pulsed(n, b0, m):
    # how many of n[b0:b0 + m] are nonzero (a reduction that vectorises)
    count = np.int32(0)
    for k in range(m):
        count += np.int32(n[b0 + k] != 0)
    return count


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_pulse_block(w, n, blk, key, xi):
    # block blk of a pulse kernel: its first device, its size and how many of it pulse; one
    # with pulses gets its devices' normals in xi
    b0 = blk * _BLOCK
    m = min(_BLOCK, w.size - b0)
    pulsed = _nb_block_pulsed(n, b0, m)
    if pulsed != 0:
        _nb_fill_normals(key, b0, xi, m, np.float32(1))
    return b0, m, pulsed


# The pulse kernels run in blocks: one without pulses is skipped; in one with pulses every
# device's step and noise are formed and a select keeps them where n ≠ 0, so that the loop
# vectorises (the count in 32 bits: 16 lanes wide, not 8). A decorrelation array pulses ~0.1 %
# of its devices a step: 0.35 against 1.8 ns a device (614,656 devices, AMD Zen 4). A device's
# index is blk·_BLOCK + k, which LLVM sees is ≥ 0: with range(b0, b1) numba's wraparound for a
# negative index kept the loops from vectorising (10 ns a device). The array is held in units of
# `scale` times the device's (the crossbar's engine units): a pulsed device is converted, moved,
# clipped and converted back; the others are left as they are.
@_jit
def _nb_pulse(w, n, eps, coeff, lo, hi, key, scale):
    moved = np.int32(0)
    xi = np.empty(_BLOCK, np.float32)  # a pulsed block's normals
    for blk in range((w.size + _BLOCK - 1) // _BLOCK):
        b0, m, pulsed = _nb_pulse_block(w, n, blk, key, xi)
        moved += pulsed
        if pulsed == 0:
            continue
        for k in range(m):
            i = b0 + k
            ni = n[i]
            stepped = w[i] / scale + (ni * eps + coeff * np.sqrt(abs(ni)) * eps * xi[k])
            stepped = lo if stepped < lo else (hi if stepped > hi else stepped)
            w[i] = stepped * scale if ni != 0 else w[i]
    return moved


@_jit
def _nb_rram_pulse(w, n, dw, ud, soft, w_min, w_max, ctoc, key, scale):
    one, zero = np.float32(1), np.float32(0)
    moved = np.int32(0)
    xi = np.empty(_BLOCK, np.float32)  # a pulsed block's normals
    for blk in range((w.size + _BLOCK - 1) // _BLOCK):
        b0, m, pulsed = _nb_pulse_block(w, n, blk, key, xi)
        moved += pulsed
        if pulsed == 0:
            continue
        for k in range(m):
            i = b0 + k
            wi = w[i] / scale
            ni = n[i]
            up = ni > 0
            step = dw[i] * ((one + ud[i]) if up else (one - ud[i]))
            if soft:
                step = step * ((one - wi / w_max) if up else (one - wi / w_min))
            step = step if step > zero else zero
            stepped = wi + ni * step + (ctoc * step * np.sqrt(abs(ni))) * xi[k]
            stepped = w_min if stepped < w_min else (w_max if stepped > w_max else stepped)
            w[i] = stepped * scale if ni != 0 else w[i]
    return moved


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_peak(top, d):
    # max(top, |d|), top ≥ 0; a NaN sticks
    p, v = _nb_abs_bits(top), _nb_abs_bits(d)
    return _nb_from_bits(v if v > p else p)


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_peak_range(a, b, lo, hi, top, diff):
    # max(top, max |a[i] − b[i]| (diff) or |a[i]| for lo ≤ i < hi), top ≥ 0, taken over the bit
    # patterns of |·| (`_nb_abs_bits`): a NaN sticks, as in numpy's max, and an integer maximum
    # vectorises where a float one with NaN checks does not (max |a − b| of 784² entries: 0.19
    # against 0.56 ms in eight scalar float chains, Intel Xeon; numpy's abs then max 0.36 + 0.41)
    peak = _nb_abs_bits(top)
    start = np.uint64(lo)  # an unsigned index: numba adds no wraparound for a negative one, and
    for k in range(hi - lo):  # the loop vectorises (max |a − I − b| of 784²: 0.10 against 0.84
        i = start + np.uint64(k)  # ns an entry; a DAC's row peaks with it, 0.19 against 0.57)
        v = _nb_abs_bits(a[i] - b[i] if diff else a[i])
        peak = v if v > peak else peak
    return _nb_from_bits(peak)


@_jit
def _nb_max_abs(a):
    return _nb_peak_range(a, a, 0, a.size, np.float32(0), False)


@_jit
def _nb_max_abs_diff(a, b):
    return _nb_peak_range(a, b, 0, a.size, np.float32(0), True)


@_jit
def _nb_grid_write(array, delta, step, lo, hi, key, stochastic, diag):
    rows, cols = array.shape
    moved = 0
    for r in range(rows):
        for c in range(cols):
            off = np.float32(1) if diag and r == c else np.float32(0)
            v = array[r, c] - off
            new = _nb_round((v - delta[r, c]) / step, lo, hi, key, r * cols + c, stochastic) * step
            if new != v:
                moved += 1
            array[r, c] = new + off
    return moved


@_jit
def _nb_grid_write_flat(array, delta, step, lo, hi, key, stochastic):
    # `_nb_grid_write` without the identity (diag False), as one flat loop: 20-25 % faster here
    moved = 0
    for i in range(array.size):
        v = array[i]
        new = _nb_round((v - delta[i]) / step, lo, hi, key, i, stochastic) * step
        moved += new != v
        array[i] = new + np.float32(0)  # as `_nb_grid_write` stores it: −0.0 becomes +0.0
    return moved


@_jit
def _nb_max_abs_diff_diag(a, b):
    # max |a − I − b| of square a, b: each row's entries off the diagonal, then its diagonal one
    n = a.shape[0]
    af, bf = a.reshape(-1), b.reshape(-1)
    top = np.float32(0)
    for r in range(n):
        row = r * n
        top = _nb_peak_range(af, bf, row, row + r, top, True)
        top = _nb_peak_range(af, bf, row + r + 1, row + n, top, True)
        top = _nb_peak(top, a[r, r] - np.float32(1) - b[r, r])
    return top


@_jit
def _nb_seed_delta(R, grad, gain, lr):
    for i in range(R.size):
        r = R[i]
        grad[i] = r - gain * (r - lr * grad[i])


@_jit
def _nb_seed_step(R, grad, gain, lr):
    # `_nb_seed_delta` and R ← R − delta in one pass; returns how many deltas are nonzero
    changed = 0
    for i in range(R.size):
        r = R[i]
        d = r - gain * (r - lr * grad[i])
        R[i] = r - d
        changed += d != 0
    return changed


_U = np.uint64  # offsets as unsigned: numba then drops its negative-index checks and vectorises


@_jit
def _nb_im2col(image, out, k, s, p, ho, wo):
    # image (B, H, W, C), zero-padded by p on the fly; out (B·ho·wo, k·k·C). For each output row
    # and kernel row ky, its k·C values are one run of the input row iy (interior positions)
    B, H, W, C = image.shape
    src, dst = image.reshape(-1), out.reshape(-1)
    kc = k * C
    P, ukc, uc = k * kc, _U(kc), _U(C)
    for b in range(B):
        for oy in range(ho):
            for ky in range(k):
                iy = oy * s + ky - p
                row = (b * ho + oy) * wo * P + ky * kc
                inside = 0 <= iy < H
                base = (b * H + iy) * W * C
                for ox in range(wo):
                    o, ix0 = _U(row + ox * P), ox * s - p
                    if not inside:
                        for j in range(ukc):
                            dst[o + j] = 0
                    elif ix0 >= 0 and ix0 + k <= W:
                        at = _U(base + ix0 * C)
                        for j in range(ukc):
                            dst[o + j] = src[at + j]
                    else:
                        for kx in range(k):
                            ix, d = ix0 + kx, o + _U(kx * C)
                            if 0 <= ix < W:
                                at = _U(base + ix * C)
                                for c in range(uc):
                                    dst[d + c] = src[at + c]
                            else:
                                for c in range(uc):
                                    dst[d + c] = 0


@_jit
def _nb_col2im(rows, image, k, s, p, ho, wo):
    # rows (B·ho·wo, k·k·C) summed onto image (B, H, W, C); entries that fell on the padding drop
    B, H, W, C = image.shape
    src, dst = rows.reshape(-1), image.reshape(-1)
    dst[:] = 0
    kc = k * C
    P, ukc, uc = k * kc, _U(kc), _U(C)
    for b in range(B):
        for oy in range(ho):
            for ky in range(k):
                iy = oy * s + ky - p
                if iy < 0 or iy >= H:
                    continue
                row = (b * ho + oy) * wo * P + ky * kc
                base = (b * H + iy) * W * C
                for ox in range(wo):
                    o, ix0 = _U(row + ox * P), ox * s - p
                    if ix0 >= 0 and ix0 + k <= W:
                        at = _U(base + ix0 * C)
                        for j in range(ukc):
                            dst[at + j] += src[o + j]
                    else:
                        for kx in range(k):
                            ix = ix0 + kx
                            if 0 <= ix < W:
                                at, d = _U(base + ix * C), o + _U(kx * C)
                                for c in range(uc):
                                    dst[at + c] += src[d + c]


@_jit
def _nb_avg_pool(y, out, s, scale):
    # out (B, H'', W'', C) = the mean of each s×s window of y (B, H', W', C), summed in window order
    B, Ho, Wo, C = out.shape
    for b in range(B):
        for oy in range(Ho):
            for ox in range(Wo):
                for c in range(C):
                    out[b, oy, ox, c] = y[b, oy * s, ox * s, c]
                for k in range(1, s * s):
                    dy, dx = k // s, k % s
                    for c in range(C):
                        out[b, oy, ox, c] += y[b, oy * s + dy, ox * s + dx, c]
                for c in range(C):
                    out[b, oy, ox, c] *= scale


@_jit
def _nb_max_pool(y, out, index, s):
    # out = each window's maximum, index its offset in the window (the first of equal values);
    # a NaN wins its window and takes the last offset, as numpy's maximum and == give
    B, Ho, Wo, C = out.shape
    for b in range(B):
        for oy in range(Ho):
            for ox in range(Wo):
                for c in range(C):
                    out[b, oy, ox, c] = y[b, oy * s, ox * s, c]
                    index[b, oy, ox, c] = 0
                for k in range(1, s * s):
                    dy, dx = k // s, k % s
                    for c in range(C):
                        v = y[b, oy * s + dy, ox * s + dx, c]
                        if v > out[b, oy, ox, c] or v != v:
                            out[b, oy, ox, c] = v
                            index[b, oy, ox, c] = k
                for c in range(C):
                    if out[b, oy, ox, c] != out[b, oy, ox, c]:
                        index[b, oy, ox, c] = s * s - 1


@_jit
def _nb_pool_back(g, index, out, s, scale, is_max):
    # the gradient g (B, H'', W'', C) on the pooled image → out (B, H', W', C): avg spreads it
    # evenly (times scale), max routes it to the maximum; rows and columns the pooling cropped get 0
    B, H, W, C = out.shape
    Ho, Wo = g.shape[1], g.shape[2]
    for b in range(B):
        for y in range(H):
            py = y // s
            for x in range(W):
                px = x // s
                if py >= Ho or px >= Wo:
                    for c in range(C):
                        out[b, y, x, c] = 0
                elif is_max:
                    k = (y % s) * s + x % s
                    for c in range(C):
                        out[b, y, x, c] = g[b, py, px, c] if index[b, py, px, c] == k else 0
                else:
                    for c in range(C):
                        out[b, y, x, c] = g[b, py, px, c] * scale


@_jit
def _nb_add_rows(h, b):
    n, m = h.shape
    for i in range(n):
        for j in range(m):
            h[i, j] += b[j]


@_jit
def _nb_minus_rows(a, b, out):
    n, m = a.shape
    for i in range(n):
        for j in range(m):
            out[i, j] = a[i, j] - b[j]


@_jit
def _nb_column_sum(e, out):
    # row after row, as numpy sums a C-ordered array over axis 0
    n, m = e.shape
    for j in range(m):
        out[j] = e[0, j]
    for i in range(1, n):
        for j in range(m):
            out[j] += e[i, j]


@_jit
def _nb_scale_rows(x, scale, repeat):
    n, m = x.shape
    for i in range(n):
        f = scale[i // repeat]
        for j in range(m):
            x[i, j] *= f


@_jit
def _nb_nonzero_indices(x, out):
    # in blocks as the pulse kernels: one without a nonzero is skipped after its count
    count = 0
    for blk in range((x.size + _BLOCK - 1) // _BLOCK):
        b0 = blk * _BLOCK
        m = min(_BLOCK, x.size - b0)
        if _nb_block_pulsed(x, b0, m) == 0:
            continue
        for k in range(m):
            out[count] = b0 + k
            count += x[b0 + k] != 0
    return count


@_jit
def _nb_count_nonzero(x):
    n = 0
    for i in range(x.size):
        n += x[i] != 0
    return n


@numba.njit(inline="always", cache=True, error_model="numpy")
def _nb_on_grid(v, step, lo, hi, on):
    # v to nearest on the grid (step, lo, hi in steps) where `on`, as `_nb_to_grid`
    if not on:
        return v
    return _nb_round(v / step, lo, hi, _U(0), 0, False) * step


def _neuron_kernels(fixed: bool):
    """A layer's fused neurons: exact (fixed False), or with the state and activations rounded to
    nearest on fixed-point grids (fixed True, a digital chip's). `fixed` is a constant of each
    compiled version: the exact one keeps its vectorised loop (a flag read at run time made it
    4× slower)."""

    @_jit
    def leaky_rows(h, b, noise, with_noise, slope, sent, grids):
        # h (n, C) += b (+ noise), in place (fixed: on the state's grid, grids[0:3]); sent =
        # f(h) = max(h, slope·h) (fixed: on the activations' grid, grids[3:6]); returns sent's
        # nonzeros
        n, C = h.shape
        nonzero = 0
        s_step, s_lo, s_hi, o_step, o_lo, o_hi = grids[0], grids[1], grids[2], grids[3], grids[4], grids[5]
        for i in range(n):
            for c in range(C):
                v = h[i, c] + b[c]
                if with_noise:
                    v += noise[i, c]
                v = _nb_on_grid(v, s_step, s_lo, s_hi, fixed)
                h[i, c] = v
                f = v * slope
                f = _nb_on_grid(v if v > f else f, o_step, o_lo, o_hi, fixed)
                sent[i, c] = f
                nonzero += f != 0
        return nonzero

    @_jit
    def leaky_pool(h, bias_row, noise, with_noise, slope, sent, index, s, scale, is_max, f_row, grids):
        # h (B, H, W, C) += b (+ noise), in place, one image row at a time (bias_row: b tiled W
        # times), f = max(h, slope·h) into the scratch f_row (both on their grids as in
        # `leaky_rows`); then f_row pooled over s×s windows into sent (B, H//s, W//s, C): the
        # mean (times scale), or the maximum with its offset in index. Each window's offsets
        # k = dy·s + dx arrive in order, so the sums and first maxima come out as `_nb_avg_pool`
        # and `_nb_max_pool` give them; rows and columns beyond the last whole window are not
        # pooled. Returns how many f(h) are nonzero.
        B, H, W, C = h.shape
        Ho, Wo = sent.shape[1], sent.shape[2]
        hf, nf = h.reshape(-1), noise.reshape(-1)
        wc, uc, last, nonzero = _U(W * C), _U(C), s * s - 1, 0
        s_step, s_lo, s_hi, o_step, o_lo, o_hi = grids[0], grids[1], grids[2], grids[3], grids[4], grids[5]
        for i in range(B):
            for y in range(H):
                at = _U((i * H + y) * W * C)
                for j in range(wc):
                    v = hf[at + j] + bias_row[j]
                    if with_noise:
                        v += nf[at + j]
                    v = _nb_on_grid(v, s_step, s_lo, s_hi, fixed)
                    hf[at + j] = v
                    f = v * slope
                    f = _nb_on_grid(v if v > f else f, o_step, o_lo, o_hi, fixed)
                    f_row[j] = f
                    nonzero += f != 0
                py, dy = y // s, y % s
                if py >= Ho:
                    continue
                for px in range(Wo):
                    for dx in range(s):
                        k, src = dy * s + dx, _U((px * s + dx) * C)
                        if k == 0:
                            for c in range(uc):
                                sent[i, py, px, c] = f_row[src + c]
                            if is_max:
                                for c in range(uc):
                                    index[i, py, px, c] = 0
                        elif not is_max:
                            for c in range(uc):
                                sent[i, py, px, c] += f_row[src + c]
                        else:
                            for c in range(uc):
                                v = f_row[src + c]
                                if v > sent[i, py, px, c] or v != v:
                                    sent[i, py, px, c] = v
                                    index[i, py, px, c] = k
                        if k == last:
                            for c in range(uc):
                                if not is_max:
                                    sent[i, py, px, c] *= scale
                                elif sent[i, py, px, c] != sent[i, py, px, c]:  # a NaN wins its window
                                    index[i, py, px, c] = last  # at the last offset, as numpy gives
        return nonzero

    return leaky_rows, leaky_pool


_nb_leaky_rows, _nb_leaky_pool = _neuron_kernels(False)
_nb_fixed_leaky_rows, _nb_fixed_leaky_pool = _neuron_kernels(True)


@_jit
def _nb_pool_back_leaky(g, index, h, out, s, scale, is_max, slope, g_row):
    # `_nb_pool_back` and then `_nb_leaky_back` in one pass, an image row at a time: the
    # gradient g (B, H'', W'', C) on the pooled image routed back onto the row (into the
    # scratch g_row; avg spreads it times scale, max routes it to the maximum, 0 where no window
    # covers), then out (B, H', W', C) = g_row ⊙ f'(h) of the leaky ReLU
    B, H, W, C = out.shape
    Ho, Wo = g.shape[1], g.shape[2]
    hf, of = h.reshape(-1), out.reshape(-1)
    wc, uc = _U(W * C), _U(C)
    for i in range(B):
        for y in range(H):
            py, dy = y // s, y % s
            if py >= Ho:
                for j in range(wc):
                    g_row[j] = 0
            else:
                for px in range(Wo):
                    for dx in range(s):
                        k, dst = dy * s + dx, _U((px * s + dx) * C)
                        if is_max:
                            for c in range(uc):
                                g_row[dst + c] = g[i, py, px, c] if index[i, py, px, c] == k else np.float32(0)
                        else:
                            for c in range(uc):
                                g_row[dst + c] = g[i, py, px, c] * scale
                for j in range(_U(Wo * s * C), wc):
                    g_row[j] = 0
            at = _U((i * H + y) * W * C)
            for j in range(wc):
                z = hf[at + j]
                of[at + j] = g_row[j] * (np.float32(1) if z > 0 else (slope if z <= 0 else z))
