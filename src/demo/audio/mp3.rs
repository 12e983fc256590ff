//! MP3 encoding with LAME: upsampling to 16 kHz, VBR, and a correct
//! Xing/LAME header frame.

use super::*;
/// Half-band interpolator that doubles the sample rate (8 kHz to 16 kHz).
///
/// Even output samples are the input samples; odd ones are interpolated
/// halfway between with a 32-tap Blackman-windowed sinc. LAME can resample
/// by itself, but its resampler costs more than the whole encode. Shorter
/// filters leave images above 4 kHz that the VBR encoder then spends bits on.
pub(super) fn upsample(samples: &[i16]) -> Vec<i16> {
    const HALF: usize = 16;
    // taps[k] weighs the input samples k + 1/2 away from the interpolated point.
    let mut taps = [0.0f32; HALF];
    for (k, tap) in taps.iter_mut().enumerate() {
        let t = k as f32 + 0.5;
        let sinc = (PI * t).sin() / (PI * t);
        // Position within the Blackman window: 0.5 at the centre, 1.0 at the edge.
        let w = 0.5 + t / (2 * HALF) as f32;
        let window = 0.42 - 0.5 * (TAU * w).cos() + 0.08 * (2.0 * TAU * w).cos();
        *tap = sinc * window;
    }
    let sum = 2.0 * taps.iter().sum::<f32>();
    for tap in &mut taps {
        *tap /= sum;
    }

    // Zero padding on both sides keeps the inner loop free of edge cases.
    let mut padded = vec![0.0f32; samples.len() + 2 * HALF];
    for (p, &s) in padded[HALF..].iter_mut().zip(samples) {
        *p = f32::from(s);
    }
    let mut out = vec![0i16; 2 * samples.len()];
    for (n, pair) in out.chunks_exact_mut(2).enumerate() {
        // Input sample n is padded[n + HALF]; the new point lies between it and the next.
        let window = &padded[n + 1..n + 1 + 2 * HALF];
        let mut acc = 0.0f32;
        for k in 0..HALF {
            acc += taps[k] * (window[HALF - 1 - k] + window[HALF + k]);
        }
        pair[0] = samples[n];
        pair[1] = acc.round().clamp(-32768.0, 32767.0) as i16;
    }
    out
}

/// Samples per MPEG-2 Layer III frame.
pub(super) const MP3_FRAME: usize = 576;
/// Longest tail, in 16 kHz samples (12 ms), that [`encode_mp3`] may leave out; see there.
pub(super) const MP3_MAX_TRIM: usize = 192;

/// Encodes mono 8 kHz PCM as a 16 kHz MPEG-2 Layer III VBR stream (about 22 kbit/s on this
/// material) with a Xing + LAME tag.
///
/// The tag carries the frame count (duration and seeking for VBR) and LAME's encoder delay
/// and padding, so gapless decoders (ffmpeg, browsers) output exactly the input length.
/// Tools that only count frames (ffprobe's `duration`) report `frames × 576` samples, which
/// also counts 1152 samples of delay plus the final frame's padding. When that padding would
/// push the estimate more than 0.1 s past the real length, the last few samples (at most
/// [`MP3_MAX_TRIM`], 12 ms) are left out so the stream ends on a frame boundary.
pub(super) fn encode_mp3(samples: &[i16]) -> anyhow::Result<Vec<u8>> {
    let mut builder = Builder::new().ok_or_else(|| anyhow!("LAME: could not allocate encoder"))?;
    builder
        .set_num_channels(1)
        .map_err(|e| anyhow!("LAME: set channels: {e}"))?;
    builder
        .set_mode(Mode::Mono)
        .map_err(|e| anyhow!("LAME: set mode: {e}"))?;
    builder
        .set_sample_rate(MP3_SAMPLE_RATE)
        .map_err(|e| anyhow!("LAME: set input sample rate: {e}"))?;
    builder
        .set_output_sample_rate(NonZeroU32::new(MP3_SAMPLE_RATE))
        .map_err(|e| anyhow!("LAME: set output sample rate: {e}"))?;
    // A CBR stream this small (108-byte frames) has no room for the tag, so use VBR.
    builder
        .set_vbr_mode(VbrMode::Mtrh)
        .map_err(|e| anyhow!("LAME: set VBR mode: {e}"))?;
    builder
        .set_vbr_quality(Quality::Ok)
        .map_err(|e| anyhow!("LAME: set VBR quality: {e}"))?;
    // Algorithm quality 7: about twice as fast as the default 5, fine for speech.
    builder
        .set_quality(Quality::Ok)
        .map_err(|e| anyhow!("LAME: set quality: {e}"))?;
    builder
        .set_to_write_vbr_tag(true)
        .map_err(|e| anyhow!("LAME: enable Xing/LAME tag: {e}"))?;
    let mut encoder = builder
        .build()
        .map_err(|e| anyhow!("LAME: initialise encoder: {e}"))?;

    let mut wide = upsample(samples);
    let tail = wide.len() % MP3_FRAME;
    if tail <= MP3_MAX_TRIM && tail < wide.len() {
        wide.truncate(wide.len() - tail);
    }

    // Speech at this setting averages ~2.8 kB per second; reserve for ~4 kB/s.
    let mut mp3 = Vec::with_capacity(samples.len() / 2 + 8 * 1024);
    for chunk in wide.chunks(MP3_CHUNK) {
        mp3.reserve(mp3lame_encoder::max_required_buffer_size(chunk.len()));
        encoder
            .encode_to_vec(MonoPcm(chunk), &mut mp3)
            .map_err(|e| anyhow!("LAME: encode: {e}"))?;
    }
    mp3.reserve(mp3lame_encoder::max_required_buffer_size(0));
    encoder
        .flush_to_vec::<FlushGap>(&mut mp3)
        .map_err(|e| anyhow!("LAME: flush: {e}"))?;

    // LAME starts the stream with a placeholder frame of zeros for the tag;
    // now that the frame count, delay and padding are known, fill it in (the
    // `lame` CLI does the same by seeking back). There is no ID3v2 tag, so the
    // placeholder is at offset 0.
    let tag_len = encoder.lame_tag_size();
    if tag_len == 0 {
        bail!("LAME: Xing/LAME tag was not reserved");
    }
    let mut tag = Vec::with_capacity(tag_len);
    let written = encoder
        .lame_tag_encode_to_vec(&mut tag)
        .ok_or_else(|| anyhow!("LAME: could not produce the Xing/LAME tag"))?;
    mp3.get_mut(..written.get())
        .ok_or_else(|| anyhow!("LAME: tag longer than the stream"))?
        .copy_from_slice(&tag);
    Ok(mp3)
}
