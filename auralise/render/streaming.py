"""Songs longer than the memory budget, segment by segment: STFT frames, model input, inverse STFT, thumbnails.

A whole-song STFT, model input, projection and resynthesised wave of a one-hour song take gigabytes. Every piece
here computes exactly what its whole-song counterpart computes (up to float summation order), but holds only the
frames of one segment at a time:

- :class:`SongFrames`: STFT frames ``[a, b)`` of the song, equal to ``frontend.stft(y)[:, a:b]``;
- :class:`SegmentedInput`: the model input, a tensor-like that computes ``narrow(time, start, length)`` on demand;
- :class:`OverlapAdd`: the inverse STFT (``frontend.istft``) fed frame blocks in order, finished samples appended
  to :class:`RawWave` files on disk;
- :class:`BlockMax`: the block-maximum reduction behind thumbnails, fed column blocks in order.

Only front-ends whose model input is computed frame by frame from the STFT (``Frontend.streamable``: ``stft`` and
``mel``) stream.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from auralise.render.thumbnail import MAX_HEIGHT, MAX_WIDTH

_READ_BLOCK = 1 << 20  # samples per block when rescaling a raw wave into its final file


class SongFrames:
    """STFT frames of a song computed a segment at a time, each equal to the whole-song STFT's frames.

    Parameters
    ----------
    y : np.ndarray, shape (n,), float32
        The song at the front-end's rate.
    frontend : Frontend
        A streamable front-end (``frontend.streamable``: kind ``stft`` or ``mel``).
    """

    def __init__(self, y: np.ndarray, frontend):
        self.y, self.fe = y, frontend
        self.n_frames = frontend.n_frames(len(y))

    def stft(self, a: int, b: int) -> np.ndarray:
        """Complex STFT frames ``[a, b)``, shape (F, b - a), complex64."""
        import librosa

        fe, n = self.fe, len(self.y)
        pad = fe.n_fft // 2 if fe.center else 0
        lo, hi = a * fe.hop_length - pad, (b - 1) * fe.hop_length + fe.n_fft - pad
        seg = self.y[max(lo, 0) : min(hi, n)]
        if lo < 0 or hi > n:
            seg = np.pad(seg, (max(0, -lo), max(0, hi - n)), mode=fe.pad_mode)
        return librosa.stft(
            np.ascontiguousarray(seg, dtype=np.float32),
            n_fft=fe.n_fft,
            hop_length=fe.hop_length,
            win_length=fe.win_length,
            window=fe.window,
            center=False,
            dtype=np.complex64,
        )


class SegmentedInput:
    """A song's model input (batch 1) that is computed only where it is read.

    It offers what :class:`~auralise.engine.chunking.ChunkedProjector` reads of an input tensor: ``shape``, ``dtype``,
    ``device``, ``dim()`` and ``narrow(time_axis, start, length)`` (which returns a real tensor).
    """

    def __init__(self, frames: SongFrames, device: str = "cpu"):
        import torch

        self.frames, self.device, self.dtype = frames, torch.device(device), torch.float32
        self.shape = torch.Size((1, *frames.fe.input_shape(frames.n_frames)))

    def dim(self) -> int:
        return len(self.shape)

    def narrow(self, axis: int, start: int, length: int):
        X = self.frames.stft(start, start + length)
        return self.frames.fe.model_input(X).to(self.device)


class RawWave:
    """A mono float32 wave appended block by block to a raw file; remembers its peak."""

    def __init__(self, path: Path):
        self.path, self.peak, self.n = path, 0.0, 0
        self._f = open(path, "wb")  # noqa: SIM115 - closed by close()

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
            self._f.write(block.tobytes())
            self.n += block.size

    def close(self) -> None:
        self._f.close()

    def write_scaled(self, path: Path, sr: int, gain: float, subtype: str) -> None:
        """Write the wave times ``gain`` as a mono WAV at ``path`` (pass a temporary name: the caller makes the
        write atomic) and delete the raw file."""
        import soundfile as sf

        self.close()
        with sf.SoundFile(str(path), "w", int(sr), 1, subtype=subtype, format="WAV") as out:
            for start in range(0, self.n, _READ_BLOCK):
                block = np.fromfile(self.path, dtype=np.float32, count=min(_READ_BLOCK, self.n - start),
                                    offset=4 * start)  # fmt: skip
                out.write(block * np.float32(gain))
        os.unlink(self.path)

    def discard(self) -> None:
        self.close()
        Path(self.path).unlink(missing_ok=True)


class OverlapAdd:
    """``frontend.istft(Y, length)`` of K spectra whose frames arrive in order, block by block.

    Finished samples (those no later frame reaches) are divided by the window-sum envelope and appended to one
    :class:`RawWave` per spectrum; after the last block the waves are exactly ``length`` samples long.
    """

    def __init__(self, frontend, n_frames: int, length: int, sinks: list[RawWave]):
        import librosa

        fe = frontend
        self.n_fft, self.hop, self.sinks = fe.n_fft, fe.hop_length, sinks
        self.fe = fe
        self.start = fe.n_fft // 2 if fe.center else 0
        padded = length + 2 * self.start if fe.center else length
        self.n_frames = min(n_frames, math.ceil(padded / self.hop))
        self.end = self.start + length  # padded coordinate after the last output sample
        self.win_length = fe.win_length or fe.n_fft
        window = librosa.filters.get_window(fe.window, self.win_length, fftbins=True)
        self.window = librosa.util.pad_center(window, size=fe.n_fft).astype(np.float32)
        self.carry = np.zeros((len(sinks), 0), dtype=np.float32)
        self.carry_at = 0  # padded coordinate of carry[:, 0]
        self.emitted = self.start  # padded coordinate of the next sample to emit
        self.next_frame = 0

    def add(self, Y: np.ndarray, first: int) -> None:
        """Frames ``[first, first + n)`` of the K spectra, ``Y`` (K, F, n) complex; blocks come in order."""
        if first != self.next_frame:
            raise ValueError(f"frames must arrive in order: expected frame {self.next_frame}, got {first}")
        self.next_frame = first + Y.shape[-1]
        n = min(Y.shape[-1], self.n_frames - first)
        if n > 0:
            self._overlap_add(Y[..., :n], first)
        done = self.next_frame >= self.n_frames
        self._emit(self.end if done else min(self.end, self.next_frame * self.hop))

    def _overlap_add(self, Y: np.ndarray, first: int) -> None:
        hop, r = self.hop, -(-self.n_fft // self.hop)
        frames = np.fft.irfft(Y, n=self.n_fft, axis=-2).astype(np.float32) * self.window[:, None]
        K, n = frames.shape[0], frames.shape[-1]
        if r * hop > self.n_fft:
            frames = np.pad(frames, ((0, 0), (0, r * hop - self.n_fft), (0, 0)))
        seg = np.zeros((K, (n + r - 1) * hop), dtype=np.float32)
        for k in range(r):  # frame t's k-th hop-long piece lands on [(t + k) * hop, (t + k + 1) * hop)
            piece = frames[:, k * hop : (k + 1) * hop, :].transpose(0, 2, 1).reshape(K, n * hop)
            seg[:, k * hop : k * hop + n * hop] += piece
        seg_at = first * hop
        # merge with what earlier blocks left unfinished (it starts at or before seg_at)
        end = max(self.carry_at + self.carry.shape[1], seg_at + seg.shape[1])
        merged = np.zeros((K, end - self.carry_at), dtype=np.float32)
        merged[:, : self.carry.shape[1]] = self.carry
        merged[:, seg_at - self.carry_at : seg_at - self.carry_at + seg.shape[1]] += seg
        self.carry = merged

    def _emit(self, upto: int) -> None:
        """Append finished samples ``[emitted, upto)`` (padded coordinates), normalised, to the sinks."""
        if upto <= self.emitted:
            return
        p0, p1 = self.emitted, upto
        out = np.zeros((len(self.sinks), p1 - p0), dtype=np.float32)
        lo, hi = max(p0, self.carry_at), min(p1, self.carry_at + self.carry.shape[1])
        if hi > lo:
            out[:, lo - p0 : hi - p0] = self.carry[:, lo - self.carry_at : hi - self.carry_at]
        env = self._envelope(p0, p1)
        nonzero = env > np.finfo(np.float32).tiny
        out[:, nonzero] /= env[nonzero]
        for sink, row in zip(self.sinks, out):
            sink.append(row)
        self.emitted = p1
        keep = max(0, p1 - self.carry_at)
        self.carry, self.carry_at = self.carry[:, keep:], self.carry_at + keep

    def _envelope(self, p0: int, p1: int) -> np.ndarray:
        """The sum of squared windows over padded samples ``[p0, p1)``, from the frames that reach them."""
        import librosa

        t0 = max(0, (p0 - self.n_fft) // self.hop + 1)
        t1 = min(self.n_frames, (p1 - 1) // self.hop + 1)
        if t1 <= t0:
            return np.zeros(p1 - p0, dtype=np.float32)
        env = librosa.filters.window_sumsquare(
            window=self.fe.window,
            n_frames=t1 - t0,
            hop_length=self.hop,
            win_length=self.win_length,
            n_fft=self.n_fft,
            dtype=np.float32,
        )
        out = np.zeros(p1 - p0, dtype=np.float32)
        a, b = max(p0, t0 * self.hop), min(p1, t0 * self.hop + len(env))
        if b > a:
            out[a - p0 : b - p0] = env[a - t0 * self.hop : b - t0 * self.hop]
        return out


class BlockMax:
    """The thumbnail's block maximum of K (F, T) arrays, fed column blocks in order (see :mod:`.thumbnail`)."""

    def __init__(self, K: int, F: int, T: int):
        self.fy, self.fx = -(-F // MAX_HEIGHT), -(-T // MAX_WIDTH)
        self.rows = -(-F // self.fy)
        self.columns: list[np.ndarray] = []
        self.carry = np.zeros((K, self.rows, 0), dtype=np.float32)

    def add(self, M: np.ndarray) -> None:
        """Columns (K, F, n) of the arrays, non-negative."""
        K, F, n = M.shape
        pad = self.rows * self.fy - F
        R = np.pad(M, ((0, 0), (0, pad), (0, 0)), mode="edge") if pad else M
        R = R.reshape(K, self.rows, self.fy, n).max(axis=2)
        R = np.concatenate([self.carry, R], axis=2)
        whole = R.shape[2] // self.fx * self.fx
        if whole:
            self.columns.append(R[:, :, :whole].reshape(K, self.rows, -1, self.fx).max(axis=3))
        self.carry = R[:, :, whole:]

    def result(self) -> np.ndarray:
        """The reduced arrays (K, rows, columns), to colour with :func:`~auralise.render.thumbnail.reduced_rgb`."""
        parts = list(self.columns)
        if self.carry.shape[2]:
            parts.append(self.carry.max(axis=2, keepdims=True))
        return np.concatenate(parts, axis=2)


def stream_features(
    projector,
    frames: SongFrames,
    groups: list[tuple[int, list[int]]],
    *,
    mode: str,
    length: int,
    raw_paths: list[Path],
) -> tuple[list[RawWave], np.ndarray, np.ndarray]:
    """Project and resynthesise a group of features over a whole song, one chunk of frames at a time.

    Parameters
    ----------
    projector : ChunkedProjector
        On a :class:`SegmentedInput` of ``frames``.
    groups : list of (layer, features)
        K features in all, in the order of ``raw_paths``.
    mode : {"mask", "magnitude"}
        As :func:`auralise.render.resynth.resynthesise` (original phase).
    length : int
        Samples of each wave.
    raw_paths : list of Path, length K
        Where the unscaled waves go (hidden temporary files in the output folder).

    Returns
    -------
    waves : list of RawWave, length K
        ``mask``: the inverse STFT of ``max(G, 0) * X`` (scale by ``1 / mask_peak`` for Choi's normalised mask);
        ``magnitude``: of ``grid_magnitude(G)`` with X's phase.
    mask_peak : np.ndarray, shape (K,)
        Per feature, the maximum of ``max(G, 0)`` (mask) or of the magnitude (magnitude) over the song.
    thumbs : np.ndarray, shape (K, rows, columns)
        Block maxima of ``max(G, 0)`` for thumbnails (:func:`~auralise.render.thumbnail.write_thumbnail` ``reduced``).
    """
    fe = frames.fe
    K = sum(len(f) for _, f in groups)
    waves = [RawWave(p) for p in raw_paths]
    try:
        ola = OverlapAdd(fe, frames.n_frames, length, waves)
        thumbs = BlockMax(K, fe.n_freq, frames.n_frames)
        peak = np.zeros(K, dtype=np.float32)
        for chunk, cores in projector.project_cores(groups):
            X = frames.stft(chunk.core_start, chunk.core_stop)
            G = np.concatenate([fe.to_grid(D) for _, _, D in cores])  # (K, F, core frames)
            R = np.maximum(G, 0.0)
            thumbs.add(R)
            if mode == "mask":
                level, Y = R, R * X[None]
            else:
                level = np.maximum(np.asarray(fe.grid_magnitude(G), dtype=np.float32), 0.0)
                absX = np.abs(X)
                Y = level * np.divide(X, absX, out=np.ones_like(X), where=absX > 0)[None]
            if level.size:
                peak = np.maximum(peak, level.reshape(K, -1).max(axis=1))
            ola.add(Y, chunk.core_start)
        for w in waves:
            w.close()
        return waves, peak, thumbs.result()
    except BaseException:
        for w in waves:
            w.discard()
        raise


def stream_layer_relative(
    projector,
    frames: SongFrames,
    layer: int,
    channels: int,
    chosen: list[int],
    *,
    mode: str,
    length: int,
    raw_paths: list[Path],
    activation_max: np.ndarray,
    song_stats: dict,
    batch: int = 16,
) -> tuple[list[RawWave], np.ndarray, np.ndarray]:
    """:func:`stream_features` of ``chosen`` features of ``layer`` for a layer-relative ``mode``
    (:mod:`auralise.render.contrast`), whose masks compare each feature with every other feature of the layer.

    Each part of the song projects all ``channels`` features of the layer, ``batch`` at a time. A first pass over
    the song gives every feature's peak and mean of ``max(G, 0)`` (kept in ``song_stats`` by layer, for the layer's
    next group); the second makes, part by part, the layer's mean mask ``Mbar`` and best claim ``W`` there and the
    chosen features' masks (:func:`~auralise.render.contrast.part_masks`): what the whole-song modes compute, up
    to rounding. ``activation_max`` (channels,): features at most 0 are never active and take no part. Returns as
    :func:`stream_features`; the peaks are those of ``contrast``'s unscaled masks (1 for the 0/1 masks).
    """
    from auralise.render.contrast import over_mean, part_masks, peak_normalised
    from auralise.render.resynth import ZERO_PEAK

    fe, K = frames.fe, len(chosen)
    groups = [(layer, list(range(a, min(channels, a + batch)))) for a in range(0, channels, batch)]
    if layer not in song_stats:
        song_stats[layer] = _song_stats(projector, fe, groups, channels, frames.n_frames * fe.n_freq)
    peak, means = song_stats[layer]
    part = (peak > ZERO_PEAK) & (np.asarray(activation_max, dtype=np.float64).reshape(-1) > 0)
    where = {f: k for k, f in enumerate(chosen)}
    waves = [RawWave(p) for p in raw_paths]
    try:
        ola = OverlapAdd(fe, frames.n_frames, length, waves)
        thumbs, level = BlockMax(K, fe.n_freq, frames.n_frames), np.zeros(K, dtype=np.float32)
        for chunk, cores in projector.project_cores(groups, lazy=True):
            X = frames.stft(chunk.core_start, chunk.core_stop)
            total, W = np.zeros(X.shape, dtype=np.float64), np.zeros(X.shape, dtype=np.float32)
            M_k, N_k, R_k = (np.zeros((K, *X.shape), dtype=np.float32) for _ in range(3))
            for _, feats, D in cores:
                G = fe.to_grid(D)
                M, loud = peak_normalised(G, ZERO_PEAK, peak[feats])
                N, use = over_mean(M, loud, means[feats]), part[feats]
                total += M[use].sum(axis=0, dtype=np.float64)
                W = np.maximum(W, N[use].max(axis=0)) if use.any() else W
                for j, f in enumerate(feats):
                    if f in where:
                        M_k[where[f]], N_k[where[f]], R_k[where[f]] = M[j], N[j], np.maximum(G[j], 0.0)
            masks = part_masks(mode, M_k, N_k, (total / max(int(part.sum()), 1)).astype(np.float32), W)
            masks[~part[chosen]] = 0.0
            thumbs.add(R_k)
            if masks.size:
                level = np.maximum(level, masks.reshape(K, -1).max(axis=1))
            ola.add(masks * X[None], chunk.core_start)
        for w in waves:
            w.close()
        return waves, (level if mode == "contrast" else np.ones(K, dtype=np.float32)), thumbs.result()
    except BaseException:
        for w in waves:
            w.discard()
        raise


def _song_stats(projector, fe, groups, channels: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Per feature of the layer, over the whole song: the peak of ``max(G, 0)`` and the mean of its peak-normalised
    mask (over ``cells`` cells), as :func:`~auralise.render.contrast.mean_normalised` divides by it."""
    peak, total = np.zeros(channels, dtype=np.float32), np.zeros(channels, dtype=np.float64)
    for _, cores in projector.project_cores(groups, lazy=True):
        for _, feats, D in cores:
            R = np.maximum(fe.to_grid(D), 0.0).reshape(len(feats), -1)
            if R.shape[1]:
                peak[feats] = np.maximum(peak[feats], R.max(axis=1))
                total[feats] += R.sum(axis=1, dtype=np.float64)
    scale = np.where(peak > 0, 1.0 / np.maximum(peak.astype(np.float64), 1e-300), 0.0).astype(np.float32)
    return peak, total * scale.astype(np.float64) / max(cells, 1)
