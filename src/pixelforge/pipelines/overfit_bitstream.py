"""The overfitted codec's bitstream: the .pfc version-2 container, the coding of the quantized
network parameters, and the wavefront coding of the latents.

A version-2 ``.pfc`` file (integers little-endian)::

    magic "PXFC" | version u8 (2) | kind u8 (1: overfitted)
    mode u8 (0 L, 1 LA, 2 RGB, 3 RGBA) | width u32 | height u32 | quality u8
    levels u8 | synthesis width u8 | context-model width u8 | context-model depth u8
    context-model weight bits u8 | synthesis weight bits u8 | probability-table CRC-32 u32
    parameters length u32 | parameters (signed exp-Golomb codes, see ParamCoder)
    alpha length u32 | alpha plane, zlib-compressed (LA/RGBA only)
    stream length u32 (32-bit words) | range-coded latents (constriction's RangeEncoder)
    CRC-32 u32 of everything before it

Latents are coded in wavefront order: step ``t`` holds every latent with
``column + WAVE_SLOPE * row == t`` in every grid (grids finest first, rows top down). All of
a step's contexts are already decoded, so the decoder runs the context model once per step
on all of them (a few thousand steps for a photo instead of one per latent).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import struct
import zlib

import numpy as np

from ..errors import PixelforgeError
from ..models.overfit_codec import (CONTEXT, LATENT_MAX, MU_BITS, WAVE_SLOPE, OverfitConfig, QuantizedNet,
                                    fixed_arm, level_shapes, param_shapes, pmf_table)

MAGIC = b"PXFC"
VERSION = 2
KIND_OVERFITTED = 1
MODES = ("L", "LA", "RGB", "RGBA")
MAX_PIXELS = 8_000_000  # fitting and the wavefront decoder hold a few GB at this size
_FIXED = struct.Struct("<BBBIIBBBBBBBI")  # version .. table CRC
MAX_PARAM_MAGNITUDE = 2 ** 40  # keeps every fixed-point product exact in float64


class BitstreamError(PixelforgeError):
    """A .pfc file that is not one, is damaged, or needs another model."""


@dataclasses.dataclass
class OverfitHeader:
    mode: str
    width: int
    height: int
    quality: int
    cfg: OverfitConfig
    arm_bits: int
    synth_bits: int


# -- parameters: signed exp-Golomb codes, one order per tensor -------------------------------------

class _BitWriter:
    def __init__(self):
        self.bits: list[str] = []

    def write(self, value: int, n: int) -> None:
        if n:
            self.bits.append(format(value, f"0{n}b"))

    def getvalue(self) -> bytes:
        s = "".join(self.bits)
        s += "0" * (-len(s) % 8)
        return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


class _BitReader:
    def __init__(self, data: bytes):
        self.s = "".join(format(b, "08b") for b in data)
        self.pos = 0

    def read(self, n: int) -> int:
        if self.pos + n > len(self.s):
            raise BitstreamError("corrupted .pfc file: the parameter section ends early")
        v = int(self.s[self.pos:self.pos + n], 2) if n else 0
        self.pos += n
        return v

    def unary(self, limit: int = 48) -> int:
        n = 0
        while self.read(1) == 0:
            n += 1
            if n > limit:
                raise BitstreamError("corrupted .pfc file: an impossible parameter code")
        return n


def _exp_golomb_lengths(values: np.ndarray, order: int) -> int:
    u = np.where(values >= 0, 2 * values, -2 * values - 1) + (1 << order)
    return int(np.sum(2 * np.floor(np.log2(u.astype(np.float64))).astype(np.int64) + 1 - order))


def _best_order(flat: np.ndarray) -> int:
    return min(range(16), key=lambda k: _exp_golomb_lengths(flat, k))


def encode_params(tensors: list[np.ndarray]) -> bytes:
    """Each tensor: its order k (4 bits), then zigzag(v) + 2^k in exp-Golomb code."""
    w = _BitWriter()
    for t in tensors:
        flat = t.reshape(-1).astype(np.int64)
        order = _best_order(flat)
        w.write(order, 4)
        for v in flat.tolist():
            u = (2 * v if v >= 0 else -2 * v - 1) + (1 << order)
            n = u.bit_length()
            w.write(0, n - 1 - order)
            w.write(u, n)
    return w.getvalue()


def decode_params(data: bytes, shapes: list[tuple[int, ...]], reader: _BitReader | None = None) -> list[np.ndarray]:
    r = reader or _BitReader(data)
    out = []
    for shape in shapes:
        order = r.read(4)
        values = np.empty(int(np.prod(shape)), dtype=np.int64)
        for i in range(values.size):
            n = r.unary() + order + 1
            u = (1 << (n - 1)) | r.read(n - 1)
            z = u - (1 << order)
            v = z // 2 if z % 2 == 0 else -(z + 1) // 2
            if abs(v) > MAX_PARAM_MAGNITUDE:
                raise BitstreamError("corrupted .pfc file: a network parameter is out of range")
            values[i] = v
        out.append(values.reshape(shape))
    return out


def param_bits(qnet: QuantizedNet) -> int:
    """The length of :func:`encode_params`' code for ``qnet``, without writing it."""
    return sum(4 + _exp_golomb_lengths(t.reshape(-1), _best_order(t.reshape(-1))) for t in qnet.tensors)


# -- latents: wavefront order, contexts, probabilities --------------------------------------------

class Wavefront:
    """Flat indices of every latent of an image's grids inside one zero-padded buffer, in
    coding order, with each step's boundaries; :meth:`contexts` gives the 16 context values."""

    def __init__(self, height: int, width: int, levels: int):
        self.shapes = level_shapes(height, width, levels)
        bases, base, order = [], 0, []
        for k, (h, w) in enumerate(self.shapes):
            bases.append(base)
            r, c = np.divmod(np.arange(h * w), w)
            order.append(np.stack([c + WAVE_SLOPE * r, np.full_like(r, k), r, base + (r + 3) * (w + 6) + c + 3], 1))
            base += (h + 3) * (w + 6)
        self.buffer_size = base
        self.bases = bases
        table = np.concatenate(order)
        table = table[np.lexsort((table[:, 2], table[:, 1], table[:, 0]))]
        self.level = table[:, 1].astype(np.int8)
        self.pos = table[:, 3]
        self.steps = np.searchsorted(table[:, 0], np.arange(table[-1, 0] + 2))
        self._offsets = np.array([[dr * (w + 6) + dc for dr, dc in CONTEXT] for _, w in self.shapes])

    def __len__(self) -> int:
        return len(self.pos)

    def contexts(self, buf: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The (hi - lo, 16) context values of the latents lo..hi (in coding order)."""
        return buf[self.pos[lo:hi, None] + self._offsets[self.level[lo:hi]]]

    def scatter(self, grids: list[np.ndarray]) -> np.ndarray:
        buf = np.zeros(self.buffer_size, dtype=np.int64)
        for k, g in enumerate(grids):
            self._view(buf, k)[3:, 3:-3] = g
        return buf

    def gather(self, buf: np.ndarray) -> list[np.ndarray]:
        return [self._view(buf, k)[3:, 3:-3].copy() for k in range(len(self.shapes))]

    def _view(self, buf: np.ndarray, k: int) -> np.ndarray:
        h, w = self.shapes[k]
        return buf[self.bases[k]:self.bases[k] + (h + 3) * (w + 6)].reshape(h + 3, w + 6)


_ALPHABET = np.arange(-LATENT_MAX, LATENT_MAX + 1)


def coding_rows(mu16: np.ndarray, scale_idx: np.ndarray) -> np.ndarray:
    """Integer frequencies (N, 2M+1) of every latent value given each latent's mean and scale."""
    table, _ = pmf_table()
    centre = mu16 >> MU_BITS
    frac = mu16 - (centre << MU_BITS)
    cols = _ALPHABET[None, :] - centre[:, None] + 2 * LATENT_MAX
    return table[frac[:, None], scale_idx[:, None], cols]


def _chunks(n: int, size: int = 1 << 17):
    return ((i, min(n, i + size)) for i in range(0, n, size))


@functools.lru_cache(maxsize=1)
def _cumulative_table() -> np.ndarray:
    """``C[f, s, j]``: the sum of the table's frequencies before column j (row sums by subtraction)."""
    table, _ = pmf_table()
    return np.concatenate([np.zeros(table.shape[:2] + (1,), np.int64), np.cumsum(table, -1)], -1)


def latent_bits(arm: QuantizedNet, wave: Wavefront, grids: list[np.ndarray]) -> float:
    """The ideal code length of the latents under the integer model (what the coder writes, to
    within a fraction of a percent), without building every latent's row."""
    table, _ = pmf_table()
    cumulative = _cumulative_table()
    buf = wave.scatter(grids)
    bits = 0.0
    for lo, hi in _chunks(len(wave)):
        mu16, s = fixed_arm(arm, wave.contexts(buf, lo, hi))
        centre = mu16 >> MU_BITS
        frac = mu16 - (centre << MU_BITS)
        first = LATENT_MAX - centre
        total = cumulative[frac, s, first + 2 * LATENT_MAX + 1] - cumulative[frac, s, first]
        freq = table[frac, s, buf[wave.pos[lo:hi]] - centre + 2 * LATENT_MAX]
        bits -= float(np.log2(freq / total).sum())
    return bits


def _family():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def encode_latents(arm: QuantizedNet, wave: Wavefront, grids: list[np.ndarray]) -> np.ndarray:
    import constriction

    buf = wave.scatter(grids)
    encoder = constriction.stream.queue.RangeEncoder()
    for lo, hi in _chunks(len(wave), 1 << 15):
        mu16, s = fixed_arm(arm, wave.contexts(buf, lo, hi))
        symbols = (buf[wave.pos[lo:hi]] + LATENT_MAX).astype(np.int32)
        encoder.encode(symbols, _family(), coding_rows(mu16, s).astype(np.float64))
    return encoder.get_compressed()


def decode_latents(arm: QuantizedNet, wave: Wavefront, words: np.ndarray) -> list[np.ndarray]:
    import constriction

    decoder = constriction.stream.queue.RangeDecoder(words)
    buf = np.zeros(wave.buffer_size, dtype=np.int64)
    family = _family()
    steps = wave.steps
    try:
        for t in range(len(steps) - 1):
            lo, hi = steps[t], steps[t + 1]
            if lo == hi:
                continue
            mu16, s = fixed_arm(arm, wave.contexts(buf, lo, hi))
            buf[wave.pos[lo:hi]] = decoder.decode(family, coding_rows(mu16, s).astype(np.float64)) - LATENT_MAX
    except (ValueError, AssertionError, RuntimeError) as e:
        raise BitstreamError(f"corrupted .pfc stream: {e}") from None
    return wave.gather(buf)


# -- the container -------------------------------------------------------------------------------

def pack(header: OverfitHeader, params: bytes, alpha: bytes, words: np.ndarray) -> bytes:
    cfg = header.cfg
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(_FIXED.pack(VERSION, KIND_OVERFITTED, MODES.index(header.mode), header.width, header.height,
                          header.quality, cfg.levels, cfg.synth_hidden, cfg.arm_hidden, cfg.arm_layers,
                          header.arm_bits, header.synth_bits, pmf_table()[1]))
    out.write(struct.pack("<I", len(params)) + params)
    out.write(struct.pack("<I", len(alpha)) + alpha)
    out.write(struct.pack("<I", len(words)) + words.astype("<u4").tobytes())
    body = out.getvalue()
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes) -> tuple[OverfitHeader, bytes, bytes, np.ndarray]:
    """Parse and check a version-2 file; every defect is a :class:`BitstreamError`."""
    need = 4 + _FIXED.size + 3 * 4 + 4
    if len(data) < need:
        raise BitstreamError("truncated .pfc file: the header is incomplete")
    if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise BitstreamError("corrupted or truncated .pfc file: checksum mismatch")
    (version, kind, mode, width, height, quality, levels, synth_hidden, arm_hidden, arm_layers, arm_bits,
     synth_bits, table_crc) = _FIXED.unpack_from(data, 4)
    if version != VERSION:
        raise BitstreamError(f".pfc format version {version} is not an overfitted-codec file")
    if kind != KIND_OVERFITTED:
        raise BitstreamError(f".pfc codec kind {kind} is not known to this pixelforge")
    cfg = OverfitConfig(levels, synth_hidden, arm_hidden, arm_layers)
    try:
        cfg.check()
    except ValueError:
        raise BitstreamError("corrupted .pfc file: impossible network sizes") from None
    if mode >= len(MODES) or width < 1 or height < 1 or quality < 1 or arm_bits > 24 or synth_bits > 24:
        raise BitstreamError("corrupted .pfc file: impossible header values")
    if width * height > MAX_PIXELS:
        raise BitstreamError(f".pfc image of {width}x{height} px exceeds the {MAX_PIXELS / 1e6:.0f} MP limit")
    if table_crc != pmf_table()[1]:
        raise BitstreamError("this .pfc file was written with other probability tables than this pixelforge uses")
    pos = 4 + _FIXED.size
    sections = []
    for scale in (1, 1, 4):
        if pos + 4 > len(data) - 4:
            raise BitstreamError("corrupted .pfc file: section lengths do not add up")
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + n * scale > len(data) - 4:
            raise BitstreamError("corrupted .pfc file: section lengths do not add up")
        sections.append(data[pos:pos + n * scale])
        pos += n * scale
    if pos != len(data) - 4:
        raise BitstreamError("corrupted .pfc file: section lengths do not add up")
    params, alpha, words = sections
    header = OverfitHeader(MODES[mode], width, height, quality, cfg, arm_bits, synth_bits)
    return header, params, alpha, np.frombuffer(words, dtype="<u4").astype(np.uint32)


def decode_networks(header: OverfitHeader, params: bytes) -> tuple[QuantizedNet, QuantizedNet]:
    shapes = param_shapes(header.cfg)
    reader = _BitReader(params)
    arm = decode_params(params, shapes["arm"], reader)
    synth = decode_params(params, shapes["synthesis"], reader)
    if len(reader.s) - reader.pos >= 8:
        raise BitstreamError("corrupted .pfc file: the parameter section is longer than its networks")
    return QuantizedNet(header.arm_bits, arm), QuantizedNet(header.synth_bits, synth)
