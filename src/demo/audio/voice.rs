//! Speech-like sound: two speakers taking turns, composed as segments of
//! vowels, consonants and pauses, rendered through the `dsp` blocks.

use super::dsp::*;
use super::*;
use crate::demo::rng::Rng;

/// Vowel formant targets (F1, F2, F3) in Hz for an adult male vocal tract.
pub(super) const VOWELS: [[f32; 3]; 8] = [
    [730.0, 1090.0, 2440.0], // a (father)
    [530.0, 1840.0, 2480.0], // e (bed)
    [270.0, 2290.0, 3010.0], // i (beet)
    [570.0, 840.0, 2410.0],  // o (bought)
    [300.0, 870.0, 2240.0],  // u (boot)
    [500.0, 1500.0, 2500.0], // schwa
    [660.0, 1720.0, 2410.0], // ae (bat)
    [440.0, 1020.0, 2240.0], // uh (book)
];

/// Nasal murmur formants (m, n).
pub(super) const NASAL: [f32; 3] = [280.0, 1300.0, 2300.0];

/// One stretch of sound with steady targets; the renderer glides into them.
#[derive(Clone, Copy)]
pub(super) struct Segment {
    /// Length in samples.
    len: usize,
    /// Target formant frequencies (already scaled for the speaker).
    formants: [f32; 3],
    /// Target voicing amplitude (0 = silent glottis).
    voice: f32,
    /// Target frication (noise) amplitude.
    noise: f32,
    /// Center frequency of the frication noise, Hz.
    noise_freq: f32,
    /// Target pitch in Hz.
    f0: f32,
    /// Amplitude smoothing coefficient per block (higher = faster attack/decay).
    amp_rate: f32,
    /// Aspiration noise mixed into the voicing, relative to it.
    breath: f32,
}

/// Per-speaker traits.
#[derive(Clone, Copy)]
pub(super) struct Speaker {
    f0: f32,
    formant_scale: f32,
    level: f32,
    breath: f32,
    rate: f32,
}

impl Speaker {
    pub(super) fn random(rng: &mut Rng, high: bool) -> Self {
        if high {
            Speaker {
                f0: rng.range(180.0, 230.0),
                formant_scale: rng.range(1.12, 1.2),
                level: rng.range(0.55, 0.9),
                breath: rng.range(0.04, 0.09),
                rate: rng.range(0.85, 1.1),
            }
        } else {
            Speaker {
                f0: rng.range(95.0, 135.0),
                formant_scale: rng.range(0.95, 1.03),
                level: rng.range(0.8, 1.0),
                breath: rng.range(0.02, 0.06),
                rate: rng.range(0.9, 1.15),
            }
        }
    }
}

/// Builds the segment list covering at least `total` samples.
pub(super) struct Composer {
    rng: Rng,
    segments: Vec<Segment>,
    len: usize,
    last_formants: [f32; 3],
    breath: f32,
}

/// Milliseconds to samples.
pub(super) fn ms(ms: f32) -> usize {
    (ms * SR / 1000.0) as usize
}

impl Composer {
    /// A silent segment holding the current articulation; callers override fields.
    pub(super) fn base(&self, len: usize, formants: [f32; 3], f0: f32) -> Segment {
        Segment {
            len,
            formants,
            voice: 0.0,
            noise: 0.0,
            noise_freq: 2500.0,
            f0,
            amp_rate: 0.3,
            breath: self.breath,
        }
    }

    pub(super) fn push(&mut self, seg: Segment) {
        self.len += seg.len;
        self.segments.push(seg);
    }

    pub(super) fn silence(&mut self, millis: f32) {
        let seg = Segment {
            amp_rate: 0.25,
            ..self.base(ms(millis), self.last_formants, 0.0)
        };
        self.push(seg);
    }

    /// A random vowel target for this speaker.
    pub(super) fn vowel(&mut self, sp: &Speaker) -> [f32; 3] {
        let v = VOWELS[self.rng.int(0, VOWELS.len() as u32 - 1) as usize];
        let mut f = [0.0; 3];
        for (out, base) in f.iter_mut().zip(v) {
            *out = base * sp.formant_scale * self.rng.range(0.94, 1.06);
        }
        // Keep F3 safely below Nyquist (4 kHz).
        f[2] = f[2].min(3400.0);
        f
    }

    /// One syllable: optional consonant onset, a vowel nucleus (sometimes a
    /// diphthong) with a pitch movement, and an optional consonant coda.
    pub(super) fn syllable(&mut self, sp: &Speaker, f0: f32, stress: f32) {
        let rate = sp.rate;
        let vowel = self.vowel(sp);
        let level = sp.level * stress;
        let here = self.last_formants;

        // Onset.
        match self.rng.int(0, 9) {
            0..=2 => {
                // Fricative: s / sh / f.
                let len = ms(self.rng.range(50.0, 110.0) * rate);
                let seg = Segment {
                    noise: level * self.rng.range(0.15, 0.35),
                    noise_freq: self.rng.range(2200.0, 3500.0),
                    ..self.base(len, here, f0)
                };
                self.push(seg);
            }
            3..=5 => {
                // Plosive: closure, then a short burst as the vowel starts.
                let closure = ms(self.rng.range(25.0, 55.0) * rate);
                let seg = Segment {
                    amp_rate: 0.5,
                    ..self.base(closure, here, f0)
                };
                self.push(seg);
                let burst = ms(self.rng.range(8.0, 18.0));
                let seg = Segment {
                    noise: level * self.rng.range(0.3, 0.6),
                    noise_freq: self.rng.range(1200.0, 3200.0),
                    amp_rate: 0.9,
                    ..self.base(burst, vowel, f0)
                };
                self.push(seg);
            }
            6..=7 => {
                // Nasal murmur (m, n): quiet, low, voiced.
                let len = ms(self.rng.range(45.0, 80.0) * rate);
                let seg = Segment {
                    voice: level * 0.35,
                    ..self.base(len, NASAL.map(|f| f * sp.formant_scale), f0 * 0.97)
                };
                self.push(seg);
            }
            _ => {}
        }

        // Nucleus: two halves so pitch (and, for diphthongs, the vowel) can move.
        let nucleus = self.rng.range(90.0, 200.0) * rate * (0.8 + 0.3 * stress);
        let half = ms(nucleus / 2.0);
        let rise = 1.0 + 0.12 * stress * self.rng.bipolar();
        let seg = Segment {
            voice: level,
            amp_rate: 0.35,
            ..self.base(half, vowel, f0 * rise)
        };
        self.push(seg);
        let end_vowel = if self.rng.chance(0.35) {
            self.vowel(sp)
        } else {
            vowel
        };
        let fall = 1.0 + self.rng.range(-0.1, 0.03);
        let seg = Segment {
            voice: level * 0.8,
            amp_rate: 0.2,
            ..self.base(half, end_vowel, f0 * fall)
        };
        self.push(seg);
        self.last_formants = end_vowel;

        // Coda: a trailing fricative now and then.
        if self.rng.chance(0.25) {
            let len = ms(self.rng.range(40.0, 90.0) * rate);
            let seg = Segment {
                noise: level * self.rng.range(0.1, 0.25),
                noise_freq: self.rng.range(2400.0, 3500.0),
                ..self.base(len, end_vowel, f0)
            };
            self.push(seg);
        }
    }

    /// A phrase: syllables grouped into words, with declining pitch.
    pub(super) fn phrase(&mut self, sp: &Speaker, syllables: u32) {
        let start = self.rng.range(1.05, 1.2);
        let end = self.rng.range(0.82, 0.95);
        let question = self.rng.chance(0.15);
        for i in 0..syllables {
            let t = i as f32 / syllables.max(2).saturating_sub(1) as f32;
            let mut contour = start + (end - start) * t;
            if question && i + 2 >= syllables {
                contour *= 1.25;
            }
            let stress = if self.rng.chance(0.3) {
                self.rng.range(1.0, 1.25)
            } else {
                self.rng.range(0.6, 0.9)
            };
            let accent = 1.0 + (stress - 0.9) * 0.25;
            self.syllable(sp, sp.f0 * contour * accent, stress);
            // Word boundary: a brief gap now and then.
            if self.rng.chance(0.3) {
                let gap = self.rng.range(20.0, 90.0);
                self.silence(gap);
            }
        }
    }
}

/// Writes the whole conversation plan.
pub(super) fn compose(seed: u64, total: usize) -> Vec<Segment> {
    let mut rng = Rng::new(seed);
    let high_first = rng.chance(0.5);
    let speakers = [
        Speaker::random(&mut rng, high_first),
        Speaker::random(&mut rng, !high_first),
    ];
    let mut c = Composer {
        rng,
        segments: Vec::with_capacity(total / 400 + 16),
        len: 0,
        last_formants: VOWELS[5],
        breath: speakers[0].breath,
    };
    // A moment of line noise before anyone speaks.
    let lead = c.rng.range(150.0, 500.0);
    c.silence(lead);
    let mut who = 0;
    while c.len < total {
        let sp = speakers[who];
        c.breath = sp.breath;
        let backchannel = c.rng.chance(0.15);
        let phrases = if backchannel { 1 } else { c.rng.int(1, 3) };
        for p in 0..phrases {
            let syllables = if backchannel {
                c.rng.int(1, 2)
            } else {
                c.rng.int(3, 14)
            };
            c.phrase(&sp, syllables);
            if p + 1 < phrases {
                let pause = c.rng.range(150.0, 450.0);
                c.silence(pause);
            }
            if c.len >= total {
                break;
            }
        }
        let turn_gap = c.rng.range(250.0, 900.0);
        c.silence(turn_gap);
        who = 1 - who;
    }
    c.segments
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Renders `total` samples of 16-bit PCM.
pub(super) fn render(seed: u64, total: usize) -> Vec<i16> {
    let segments = compose(seed, total);
    let mut out = vec![0.0f32; total];

    // Separate streams, so that tweaking the score does not shift the noise and vice versa.
    let mut jitter_rng = Rng::new(seed ^ 0xA5A5_5A5A_0F0F_F0F0);
    let mut noise = Noise::new(&mut jitter_rng);
    let mut line_noise = Noise::new(&mut jitter_rng);
    let mut tract = [Resonator::default(); 3];
    let mut fric = Resonator::default();
    let bandwidths = [70.0f32, 110.0, 170.0];

    let mut formants = VOWELS[5];
    let mut f0 = 120.0f32;
    let mut voice = 0.0f32;
    let mut fnoise = 0.0f32;
    let mut noise_freq = 3000.0f32;
    let mut phase = 0.0f32;
    let mut tilt = 0.0f32;
    let mut drift = 0.0f32;

    let mut pos = 0usize;
    'segments: for seg in &segments {
        let end = (pos + seg.len).min(total);
        while pos < end {
            // Control-rate update: glide towards the segment's targets.
            for (f, target) in formants.iter_mut().zip(seg.formants) {
                *f += (target - *f) * 0.05;
            }
            if seg.f0 > 0.0 {
                f0 += (seg.f0 - f0) * 0.06;
            }
            voice += (seg.voice - voice) * seg.amp_rate;
            fnoise += (seg.noise - fnoise) * seg.amp_rate;
            noise_freq += (seg.noise_freq - noise_freq) * 0.3;
            drift = drift * 0.97 + 0.004 * jitter_rng.bipolar();
            for ((res, f), bw) in tract.iter_mut().zip(formants).zip(bandwidths) {
                res.tune(f, bw + f * 0.02);
            }
            fric.tune(noise_freq, 600.0);

            let pitch = (f0 * (1.0 + drift)).clamp(60.0, 400.0);
            let dt = pitch / SR;
            let block_end = (pos + BLOCK).min(end);
            for sample in &mut out[pos..block_end] {
                // Glottal source: band-limited falling sawtooth, softened by a one-pole tilt.
                phase += dt;
                if phase >= 1.0 {
                    phase -= 1.0;
                }
                let saw = 1.0 - 2.0 * phase + poly_blep(phase, dt);
                tilt += (saw - tilt) * 0.85;
                let n = noise.next();
                let excitation = voice * (tilt + seg.breath * n);
                let mut y = excitation;
                for res in &mut tract {
                    y = res.process(y);
                }
                y += fric.process(fnoise * n) * 0.5;
                *sample = y;
            }
            pos = block_end;
            if pos >= total {
                break 'segments;
            }
        }
    }

    finish(&mut out, &mut line_noise);
    out.iter().map(|&x| to_i16(x)).collect()
}

/// Telephone band-pass, loudness normalisation, soft limiting, fade-out, line noise.
pub(super) fn finish(buf: &mut [f32], noise: &mut Noise) {
    let mut hp = Biquad::high_pass(280.0, 0.707);
    let mut hp2 = Biquad::high_pass(200.0, 0.6);
    let mut lp = Biquad::low_pass(3400.0, 0.707);
    // Mild pre-emphasis, like a handset microphone's presence rise.
    let mut previous = 0.0f32;
    for x in buf.iter_mut() {
        let emphasised = *x - 0.5 * previous;
        previous = *x;
        *x = lp.process(hp2.process(hp.process(emphasised)));
    }

    // Normalise the level of the *speech* (20 ms frames within 30 dB of the
    // loudest frame) to -21 dBFS RMS, a typical telephone level.
    let frame = (SR / 50.0) as usize;
    let energies: Vec<f32> = buf
        .chunks(frame)
        .map(|c| c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32)
        .collect();
    let loudest = energies.iter().copied().fold(0.0f32, f32::max);
    let (sum, count) = energies
        .iter()
        .filter(|&&e| e > loudest * 1e-3)
        .fold((0.0f64, 0usize), |(s, n), &e| (s + f64::from(e), n + 1));
    if count > 0 && sum > 0.0 {
        let rms = (sum / count as f64).sqrt() as f32;
        let gain = 0.089 / rms;
        for x in buf.iter_mut() {
            *x = soft_clip(*x * gain);
        }
    }

    // The score is cut off mid-word at the end; fade the last 30 ms out.
    let fade = ms(30.0).min(buf.len());
    let start = buf.len() - fade;
    for (i, x) in buf[start..].iter_mut().enumerate() {
        *x *= 1.0 - (i + 1) as f32 / fade as f32;
    }

    // Faint line noise: slightly low-passed hiss around -62 dBFS.
    let mut hiss = 0.0f32;
    for x in buf.iter_mut() {
        hiss += (noise.next() - hiss) * 0.5;
        *x += 0.0012 * hiss;
    }
}
