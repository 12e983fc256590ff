//! Deterministic, synthetic "phone call" recordings for the demo seeder.
//!
//! The demo needs a few hundred recordings that look and sound like the
//! real thing (Twilio-style 8 kHz mono 16-bit PCM) without shipping any
//! audio files. [`synthesize`] renders speech-like audio with a tiny formant
//! synthesizer (a band-limited glottal buzz through three resonators, plus
//! filtered-noise consonants), then packs the same samples as a WAV file and
//! as an MP3 encoded by LAME (through the `mp3lame-encoder` crate).
//!
//! Everything is driven by a seeded SplitMix64 generator, so a given
//! `(seed, seconds)` pair always produces the same bytes on the same build.

use std::f32::consts::{PI, TAU};
use std::num::NonZeroU32;

mod dsp;
mod mp3;
mod voice;

use anyhow::{Context, anyhow, bail};

use mp3::encode_mp3;
use mp3lame_encoder::{Builder, FlushGap, Mode, MonoPcm, Quality, VbrMode};
use voice::render;

/// Sample rate of the synthesized PCM and of the WAV file, in Hz.
const SAMPLE_RATE: u32 = 8_000;
/// Sample rate of the MP3 stream, in Hz (MPEG-2 Layer III).
const MP3_SAMPLE_RATE: u32 = 16_000;
/// Longest clip `synthesize` accepts, in seconds (one hour; peak memory is ~60 MB per 10 min).
const MAX_SECONDS: u32 = 60 * 60;

const SR: f32 = SAMPLE_RATE as f32;
/// Parameters are smoothed and filters retuned once per block of this many samples.
const BLOCK: usize = 16;
/// Samples handed to LAME per call.
const MP3_CHUNK: usize = 16_384;

/// A synthesized recording in both formats.
pub struct Clip {
    /// RIFF/WAVE file: PCM, 1 channel, 8000 Hz, 16 bits per sample.
    pub wav: Vec<u8>,
    /// MP3 file: MPEG-2 Layer III, mono, 16 kHz, VBR around 22 kbit/s, with a Xing/LAME tag.
    pub mp3: Vec<u8>,
}

/// Synthesizes `seconds` of call-like audio (8 kHz, mono, 16-bit PCM, like Twilio's recordings),
/// deterministic from `seed`: alternating "speaker" turns of voiced, speech-like sound (a few
/// formant-like harmonics with pitch contour and syllable-rate amplitude envelope; two speakers
/// with different pitch), short pauses, a faint line-noise floor. Not pure beeps: it should sound
/// like muffled talking. Then encodes MP3 (mono, 8 kHz or 16 kHz sample rate as the encoder
/// allows, low bitrate ~16–32 kbps, so a 10-minute clip stays ~1–2 MB).
///
/// The WAV is a canonical 44-byte-header RIFF/WAVE file. The MP3 is MPEG-2 Layer III, mono,
/// 16 kHz, LAME VBR (about 22 kbit/s here, ~165 kB per minute) with a Xing/LAME tag, so
/// gapless decoders output the same number of samples as the WAV (to within 12 ms) and
/// frame-counting tools such as ffprobe report at most ~0.1 s more.
///
/// Same `seed` and `seconds` give identical bytes (on the same build and platform: the
/// synthesis uses `f32` math from the platform's `libm`).
///
/// # Errors
///
/// Fails if `seconds` is 0 or more than 3600, or if the MP3 encoder reports an error.
pub fn synthesize(seed: u64, seconds: u32) -> anyhow::Result<Clip> {
    if seconds == 0 {
        bail!("cannot synthesize an empty recording (seconds = 0)");
    }
    if seconds > MAX_SECONDS {
        bail!("refusing to synthesize {seconds} s of audio (limit is {MAX_SECONDS} s)");
    }
    let samples = render(seed, seconds as usize * SAMPLE_RATE as usize);
    let wav = encode_wav(&samples)?;
    let mp3 = encode_mp3(&samples).context("encoding synthesized audio as MP3")?;
    Ok(Clip { wav, mp3 })
}

// ---------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------

/// A canonical 44-byte RIFF/WAVE header followed by little-endian PCM.
fn encode_wav(samples: &[i16]) -> anyhow::Result<Vec<u8>> {
    const CHANNELS: u16 = 1;
    const BITS: u16 = 16;
    let block_align = CHANNELS * BITS / 8;
    let byte_rate = SAMPLE_RATE * u32::from(block_align);
    let data_len = u32::try_from(samples.len() * usize::from(block_align))
        .ok()
        .filter(|len| *len <= u32::MAX - 36)
        .ok_or_else(|| anyhow!("recording too long for a WAV file"))?;

    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&CHANNELS.to_le_bytes());
    wav.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&byte_rate.to_le_bytes());
    wav.extend_from_slice(&block_align.to_le_bytes());
    wav.extend_from_slice(&BITS.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    Ok(wav)
}

#[cfg(test)]
mod tests {
    use super::mp3::upsample;
    use super::*;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_le_bytes([b[i], b[i + 1]])
    }

    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    fn pcm(wav: &[u8]) -> Vec<i16> {
        wav[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// Frame count from the Xing/Info tag of an MPEG-2 mono stream without ID3v2.
    fn xing_frames(mp3: &[u8]) -> u32 {
        // 4-byte header + 9 bytes of MPEG-2 mono side info, then the tag.
        let tag = &mp3[13..];
        assert!(tag.starts_with(b"Xing") || tag.starts_with(b"Info"));
        let flags = u32::from_be_bytes([tag[4], tag[5], tag[6], tag[7]]);
        assert_eq!(flags & 1, 1, "frame count present");
        u32::from_be_bytes([tag[8], tag[9], tag[10], tag[11]])
    }

    #[test]
    fn wav_header_and_length_for_three_seconds() {
        let clip = synthesize(7, 3).unwrap();
        let wav = &clip.wav;
        let data_len = 3 * 8_000 * 2;
        assert_eq!(wav.len(), 44 + data_len);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32_at(wav, 4) as usize, 36 + data_len);
        assert_eq!(&wav[8..12], b"WAVE");
        assert_eq!(&wav[12..16], b"fmt ");
        assert_eq!(u32_at(wav, 16), 16, "fmt chunk size");
        assert_eq!(u16_at(wav, 20), 1, "PCM format");
        assert_eq!(u16_at(wav, 22), 1, "channels");
        assert_eq!(u32_at(wav, 24), 8_000, "sample rate");
        assert_eq!(u32_at(wav, 28), 16_000, "byte rate");
        assert_eq!(u16_at(wav, 32), 2, "block align");
        assert_eq!(u16_at(wav, 34), 16, "bits per sample");
        assert_eq!(&wav[36..40], b"data");
        assert_eq!(u32_at(wav, 40) as usize, data_len);
    }

    #[test]
    fn audio_is_neither_silent_nor_clipped() {
        for seed in [11, 12, 13] {
            let samples = pcm(&synthesize(seed, 6).unwrap().wav);
            let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
            let mean_square =
                samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64;
            let rms = mean_square.sqrt();
            // Peaks between -12 and -0.5 dBFS, overall RMS between -40 and -15 dBFS.
            assert!((8_200..31_000).contains(&peak), "seed {seed}: peak {peak}");
            assert!((330.0..5_800.0).contains(&rms), "seed {seed}: rms {rms}");
            // Speech with pauses: a good share of quiet samples, and no long digital silence.
            let quiet = samples.iter().filter(|s| s.unsigned_abs() < 300).count();
            assert!(quiet > samples.len() / 10, "seed {seed}: no pauses");
            assert!(samples.windows(400).all(|w| w.iter().any(|&s| s != 0)));
        }
    }

    #[test]
    fn mp3_starts_with_a_frame_or_id3_tag() {
        let clip = synthesize(7, 3).unwrap();
        let mp3 = &clip.mp3;
        assert!(mp3.len() > 1_000, "mp3 is {} bytes", mp3.len());
        let id3 = mp3.starts_with(b"ID3");
        let sync = mp3[0] == 0xFF && mp3[1] & 0xE0 == 0xE0;
        assert!(id3 || sync, "starts with {:02x?}", &mp3[..4]);
        assert!(
            sync,
            "no ID3 tag is written, so the first frame comes first"
        );
        assert_eq!(mp3[1] & 0x18, 0x10, "MPEG-2 (not 2.5)");
        assert_eq!(mp3[1] & 0x06, 0x02, "Layer III");
        assert_eq!((mp3[2] >> 2) & 0x03, 0x02, "16 kHz");
        assert_eq!(mp3[3] >> 6, 3, "mono");
        // The tag frame was filled in (LAME leaves zeros there until asked).
        let frames = xing_frames(mp3);
        assert!(frames > 0);
        let lame = &mp3[13 + 120..];
        assert!(
            lame.starts_with(b"LAME"),
            "LAME extension follows the Xing tag"
        );
    }

    #[test]
    fn mp3_duration_estimate_matches_length() {
        // What ffprobe reports: frames × 576 samples at 16 kHz, encoder delay included.
        for seconds in [1, 2, 3, 4, 9, 12, 13, 17] {
            let samples = vec![0i16; seconds * 8_000];
            let mp3 = encode_mp3(&samples).unwrap();
            let estimate = f64::from(xing_frames(&mp3)) * 576.0 / 16_000.0;
            let error = estimate - seconds as f64;
            assert!(
                (0.0..=0.1).contains(&error),
                "{seconds} s: estimate {estimate}"
            );
        }
    }

    #[test]
    fn mp3_bitrate_is_low() {
        let clip = synthesize(3, 20).unwrap();
        let kbps = clip.mp3.len() as f64 * 8.0 / 20.0 / 1_000.0;
        assert!((12.0..32.0).contains(&kbps), "{kbps:.1} kbit/s");
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        let a = synthesize(42, 4).unwrap();
        let b = synthesize(42, 4).unwrap();
        assert!(a.wav == b.wav, "WAV differs between runs");
        assert!(a.mp3 == b.mp3, "MP3 differs between runs");
    }

    #[test]
    fn different_seeds_differ() {
        let a = synthesize(1, 4).unwrap();
        let b = synthesize(2, 4).unwrap();
        assert_eq!(a.wav.len(), b.wav.len());
        assert!(a.wav != b.wav);
        assert!(a.mp3 != b.mp3);
    }

    #[test]
    fn rejects_empty_and_absurd_lengths() {
        assert!(synthesize(1, 0).is_err());
        assert!(synthesize(1, MAX_SECONDS + 1).is_err());
    }

    #[test]
    fn upsampler_keeps_samples_and_interpolates_smoothly() {
        let input: Vec<i16> = (0..400)
            .map(|i| ((i as f32 * TAU * 500.0 / 8_000.0).sin() * 10_000.0) as i16)
            .collect();
        let out = upsample(&input);
        assert_eq!(out.len(), 2 * input.len());
        for (i, &s) in input.iter().enumerate() {
            assert_eq!(out[2 * i], s);
        }
        // Away from the edges, odd samples sit on the 500 Hz sine at 16 kHz.
        for (j, &s) in out.iter().enumerate().take(700).skip(100) {
            let ideal = (j as f32 * TAU * 500.0 / 16_000.0).sin() * 10_000.0;
            assert!(
                (f32::from(s) - ideal).abs() < 40.0,
                "sample {j}: {s} vs {ideal}"
            );
        }
    }
}
