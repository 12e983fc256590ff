//! Signal-processing building blocks of the synthesizer: noise, resonators,
//! filters, band-limited edges and the output limiter.

use super::*;
use crate::demo::rng::Rng;
/// Cheap per-sample white noise (xorshift32), in `[-1, 1)`.
pub(super) struct Noise(u32);

impl Noise {
    pub(super) fn new(rng: &mut Rng) -> Self {
        // xorshift32 must never be seeded with 0.
        Noise((rng.next_u64() >> 32) as u32 | 1)
    }

    pub(super) fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x >> 8) as f32 * (2.0 / (1u32 << 24) as f32) - 1.0
    }
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

/// Two-pole resonator (Klatt style), unity gain at DC.
#[derive(Clone, Copy, Default)]
pub(super) struct Resonator {
    a: f32,
    b: f32,
    c: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    pub(super) fn tune(&mut self, freq: f32, bandwidth: f32) {
        let r = (-PI * bandwidth / SR).exp();
        self.c = -r * r;
        self.b = 2.0 * r * (TAU * freq / SR).cos();
        self.a = 1.0 - self.b - self.c;
    }

    pub(super) fn process(&mut self, x: f32) -> f32 {
        let y = self.a * x + self.b * self.y1 + self.c * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// RBJ biquad, used for the telephone band-pass.
#[derive(Clone, Copy)]
pub(super) struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl Biquad {
    pub(super) fn new(b: [f32; 3], a0: f32, a1: f32, a2: f32) -> Self {
        Biquad {
            b0: b[0] / a0,
            b1: b[1] / a0,
            b2: b[2] / a0,
            a1: a1 / a0,
            a2: a2 / a0,
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    pub(super) fn high_pass(freq: f32, q: f32) -> Self {
        let w = TAU * freq / SR;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * q);
        let b = [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0];
        Biquad::new(b, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
    }

    pub(super) fn low_pass(freq: f32, q: f32) -> Self {
        let w = TAU * freq / SR;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * q);
        let b = [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0];
        Biquad::new(b, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
    }

    pub(super) fn process(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.b1 * self.x1 + self.b2 * self.x2
            - self.a1 * self.y1
            - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Polynomial band-limited step correction for the sawtooth oscillator.
pub(super) fn poly_blep(t: f32, dt: f32) -> f32 {
    if t < dt {
        let t = t / dt;
        t + t - t * t - 1.0
    } else if t > 1.0 - dt {
        let t = (t - 1.0) / dt;
        t * t + t + t + 1.0
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------
// The "score": what to say, as a list of articulatory targets
// ---------------------------------------------------------------------------

/// Leaves quiet samples alone and bends peaks smoothly towards -1 dBFS, so
/// that neither the WAV nor the decoded MP3 (which overshoots a little) clips.
pub(super) fn soft_clip(x: f32) -> f32 {
    const KNEE: f32 = 0.5;
    const CEILING: f32 = 0.89;
    let a = x.abs();
    if a <= KNEE {
        x
    } else {
        let room = CEILING - KNEE;
        (KNEE + room * ((a - KNEE) / room).tanh()).copysign(x)
    }
}

pub(super) fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}
