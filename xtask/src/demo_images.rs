//! `cargo xtask gen-demo-images`: renders the demo site's five plates.
//!
//! Procedural art, so the demo ships real megabytes of images without
//! anyone's photographs: a Julia set, a flow field, a strange attractor,
//! a Voronoi "lichen" and layered noise ridges. Every image comes from a
//! fixed seed, so a re-run reproduces the committed files. Each is a
//! detailed 1600×1000 JPEG of a few hundred KB: large enough that fetching
//! them from peers rather than the origin matters, each well under 1 MB.

use std::f64::consts::TAU;
use std::fs;
use std::io::BufWriter;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

const W: u32 = 1600;
const H: u32 = 1000;
const JPEG_QUALITY: u8 = 90;

type Color = [f64; 3];
/// A plate's file name and renderer.
type Plate = (&'static str, fn() -> RgbImage);

/// Renders every plate into `out_dir`.
pub fn run(out_dir: &Path) -> Result<(), String> {
    fs::create_dir_all(out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let plates: [Plate; 5] = [
        ("julia-fern.jpg", julia_fern),
        ("salt-wind.jpg", salt_wind),
        ("clifford-moth.jpg", clifford_moth),
        ("lichen.jpg", lichen),
        ("dusk-ridges.jpg", dusk_ridges),
    ];
    let mut total = 0;
    for (name, render) in plates {
        let started = std::time::Instant::now();
        let img = render();
        let path = out_dir.join(name);
        save_jpeg(&path, &img)?;
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        total += size;
        println!(
            "{:<40} {:>8} bytes  {:.1}s",
            path.display(),
            size,
            started.elapsed().as_secs_f64()
        );
    }
    println!("total {total} bytes");
    Ok(())
}

fn save_jpeg(path: &Path, img: &RgbImage) -> Result<(), String> {
    let file =
        fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    JpegEncoder::new_with_quality(BufWriter::new(file), JPEG_QUALITY)
        .encode_image(img)
        .map_err(|e| format!("cannot encode {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Tools: a seeded RNG, gradient noise, palettes and a float canvas.

/// SplitMix64: tiny, seedable, good enough for art.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
}

/// A stateless hash of a lattice point to [0, 1).
fn hash2(x: i64, y: i64, seed: u64) -> f64 {
    let mut r = Rng(seed
        ^ (x as u64).wrapping_mul(0x9E37_79B9)
        ^ (y as u64).wrapping_mul(0x85EB_CA6B) << 1);
    r.next_u64();
    r.f64()
}

/// 2-D gradient noise, roughly in [-1, 1].
struct Noise {
    seed: u64,
}

impl Noise {
    fn gradient(&self, x: i64, y: i64) -> (f64, f64) {
        let a = hash2(x, y, self.seed) * TAU;
        (a.cos(), a.sin())
    }

    fn get(&self, x: f64, y: f64) -> f64 {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (ix, iy) = (x0 as i64, y0 as i64);
        let dot = |dx: i64, dy: i64| {
            let (gx, gy) = self.gradient(ix + dx, iy + dy);
            gx * (fx - dx as f64) + gy * (fy - dy as f64)
        };
        // Quintic fade: no visible grid creases.
        let fade = |t: f64| t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
        let (u, v) = (fade(fx), fade(fy));
        let top = lerp(dot(0, 0), dot(1, 0), u);
        let bottom = lerp(dot(0, 1), dot(1, 1), u);
        lerp(top, bottom, v) * 1.4
    }

    /// Fractal sum of `octaves` octaves.
    fn fbm(&self, x: f64, y: f64, octaves: u32) -> f64 {
        let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
        for i in 0..octaves {
            // Offset each octave so their lattices do not line up.
            let o = f64::from(i) * 17.31;
            sum += amp * self.get(x * freq + o, y * freq - o);
            norm += amp;
            amp *= 0.5;
            freq *= 2.03;
        }
        sum / norm
    }
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

fn mix(a: Color, b: Color, t: f64) -> Color {
    [
        lerp(a[0], b[0], t),
        lerp(a[1], b[1], t),
        lerp(a[2], b[2], t),
    ]
}

fn scale(c: Color, k: f64) -> Color {
    [c[0] * k, c[1] * k, c[2] * k]
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Cosine palette `a + b·cos(2π(c·t + d))` (after Íñigo Quílez).
fn palette(t: f64, a: Color, b: Color, c: Color, d: Color) -> Color {
    let f = |i: usize| a[i] + b[i] * (TAU * (c[i] * t + d[i])).cos();
    [f(0), f(1), f(2)]
}

/// Linear-light floats in, sRGB-ish bytes out, with a little film grain:
/// the grain hides banding in smooth gradients.
fn to_image(w: u32, h: u32, grain: f64, seed: u64, px: impl Fn(u32, u32) -> Color) -> RgbImage {
    let mut rng = Rng(seed);
    RgbImage::from_fn(w, h, |x, y| {
        let c = px(x, y);
        let g = (rng.f64() - 0.5) * grain;
        let byte = |v: f64| {
            ((v.clamp(0.0, 1.0).powf(1.0 / 2.2) + g) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        Rgb([byte(c[0]), byte(c[1]), byte(c[2])])
    })
}

/// An additive float canvas for particle plates.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<Color>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Canvas {
        Canvas {
            w: w as usize,
            h: h as usize,
            px: vec![[0.0; 3]; (w * h) as usize],
        }
    }

    /// Adds `c` at a sub-pixel position, split over the four neighbours.
    fn splat(&mut self, x: f64, y: f64, c: Color) {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        for (dx, dy, wgt) in [
            (0, 0, (1.0 - fx) * (1.0 - fy)),
            (1, 0, fx * (1.0 - fy)),
            (0, 1, (1.0 - fx) * fy),
            (1, 1, fx * fy),
        ] {
            let (px, py) = (x0 as i64 + dx, y0 as i64 + dy);
            if px >= 0 && py >= 0 && (px as usize) < self.w && (py as usize) < self.h {
                let p = &mut self.px[py as usize * self.w + px as usize];
                for i in 0..3 {
                    p[i] += c[i] * wgt;
                }
            }
        }
    }

    fn get(&self, x: u32, y: u32) -> Color {
        self.px[y as usize * self.w + x as usize]
    }
}

// ---------------------------------------------------------------------------
// The plates.

/// Plate I: a filled Julia set, c = −0.7269 + 0.1889i, smooth-coloured,
/// 2×2 supersampled.
fn julia_fern() -> RgbImage {
    const MAX_ITER: u32 = 300;
    let (cr, ci) = (-0.7269, 0.1889);
    let zoom = 1.75 / f64::from(H);
    let sample = |x: f64, y: f64| -> Color {
        let (mut zr, mut zi) = (
            (x - f64::from(W) / 2.0) * zoom,
            (y - f64::from(H) / 2.0) * zoom,
        );
        let mut n = 0;
        while n < MAX_ITER && zr * zr + zi * zi < 256.0 {
            (zr, zi) = (zr * zr - zi * zi + cr, 2.0 * zr * zi + ci);
            n += 1;
        }
        if n == MAX_ITER {
            return [0.010, 0.014, 0.035];
        }
        let smooth = f64::from(n) + 1.0 - (zr * zr + zi * zi).ln().ln() / std::f64::consts::LN_2;
        let t = smooth.sqrt() * 0.23;
        let c = palette(
            t,
            [0.5, 0.5, 0.5],
            [0.5, 0.5, 0.5],
            [1.0, 1.0, 1.0],
            [0.00, 0.15, 0.30],
        );
        // Fade the far field to night so the set glows.
        scale(mix([0.0; 3], c, smoothstep(2.0, 14.0, smooth)), 0.95)
    };
    to_image(W, H, 0.006, 1, |x, y| {
        let (x, y) = (f64::from(x), f64::from(y));
        let mut acc = [0.0; 3];
        for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
            let c = sample(x + dx, y + dy);
            for i in 0..3 {
                acc[i] += c[i] * c[i] / 4.0;
            }
        }
        [acc[0].sqrt(), acc[1].sqrt(), acc[2].sqrt()]
    })
}

/// Plate II: particles drifting along a noise flow field, like wind over
/// salt flats.
fn salt_wind() -> RgbImage {
    let noise = Noise { seed: 2 };
    let mut rng = Rng(22);
    let mut canvas = Canvas::new(W, H);
    for _ in 0..14_000 {
        let (mut x, mut y) = (
            rng.range(-100.0, f64::from(W) + 100.0),
            rng.range(-100.0, f64::from(H) + 100.0),
        );
        let hue = 0.55 + 0.35 * noise.fbm(x * 0.0008, y * 0.0008, 2) + rng.range(-0.04, 0.04);
        let colour = palette(
            hue,
            [0.55, 0.45, 0.40],
            [0.45, 0.35, 0.35],
            [1.0, 1.0, 1.0],
            [0.00, 0.10, 0.20],
        );
        let strength = rng.range(0.020, 0.070);
        for _ in 0..320 {
            let angle = noise.fbm(x * 0.0018, y * 0.0018, 3) * TAU * 1.3;
            x += angle.cos() * 1.2;
            y += angle.sin() * 1.2;
            canvas.splat(x, y, scale(colour, strength));
        }
    }
    let sky = Noise { seed: 202 };
    to_image(W, H, 0.03, 2, |x, y| {
        let a = canvas.get(x, y);
        let (fx, fy) = (f64::from(x), f64::from(y));
        let base = mix(
            [0.006, 0.020, 0.030],
            [0.030, 0.012, 0.040],
            fy / f64::from(H) + 0.15 * sky.fbm(fx * 0.003, fy * 0.003, 3),
        );
        // Soft exposure so dense streams saturate gracefully.
        let expose = |v: f64| 1.0 - (-1.6 * v).exp();
        [
            base[0] + expose(a[0]),
            base[1] + expose(a[1]),
            base[2] + expose(a[2]),
        ]
    })
}

/// Plate III: the Clifford attractor (a = −1.7, b = 1.3, c = −0.1,
/// d = −1.21) drawn as ink on paper, coloured by direction of travel.
fn clifford_moth() -> RgbImage {
    let (a, b, c, d): (f64, f64, f64, f64) = (-1.7, 1.3, -0.1, -1.21);
    let mut canvas = Canvas::new(W, H);
    let mut density = vec![0.0f64; (W * H) as usize];
    let (mut x, mut y) = (0.1, 0.1);
    // The attractor spans about [-1.1, 1.1] × [-2.2, 2.2]; fit it sideways.
    let s = f64::from(W) / 4.8;
    for i in 0..12_000_000u32 {
        let nx = (a * y).sin() + c * (a * x).cos();
        let ny = (b * x).sin() + d * (b * y).cos();
        let heading = (ny - y).atan2(nx - x);
        (x, y) = (nx, ny);
        if i < 100 {
            continue;
        }
        let (px, py) = (f64::from(W) / 2.0 + y * s, f64::from(H) / 2.0 + x * s);
        let ink = palette(
            heading / TAU,
            [0.45, 0.40, 0.45],
            [0.40, 0.35, 0.30],
            [1.0, 1.0, 1.0],
            [0.10, 0.35, 0.60],
        );
        canvas.splat(px, py, ink);
        if (px as u32) < W && (py as u32) < H {
            density[py as usize * W as usize + px as usize] += 1.0;
        }
    }
    let max = density.iter().cloned().fold(1.0, f64::max).ln();
    let paper_noise = Noise { seed: 3 };
    to_image(W, H, 0.025, 3, |x, y| {
        let n = density[(y * W + x) as usize];
        let (fx, fy) = (f64::from(x), f64::from(y));
        let fibre = 0.03 * paper_noise.fbm(fx * 0.02, fy * 0.002, 4)
            + 0.02 * paper_noise.fbm(fx * 0.004, fy * 0.004, 2);
        let paper = [0.86 + fibre, 0.80 + fibre, 0.66 + fibre];
        if n == 0.0 {
            return paper;
        }
        let sum = canvas.get(x, y);
        let ink = [
            sum[0] / n.max(1.0),
            sum[1] / n.max(1.0),
            sum[2] / n.max(1.0),
        ];
        let k = ((1.0 + n).ln() / max).powf(0.4);
        // Dense regions darken towards deep ink, sparse ones tint the paper.
        mix(paper, scale(ink, 0.22), k.clamp(0.0, 1.0))
    })
}

/// Plate IV: a Voronoi colony, crusts of colour with darker rims on rock.
fn lichen() -> RgbImage {
    const CELL: f64 = 46.0;
    let texture = Noise { seed: 4 };
    let rock = Noise { seed: 44 };
    // Jittered-grid Voronoi: the nearest seed is in the 3×3 neighbourhood.
    let seed_at = |gx: i64, gy: i64| -> (f64, f64) {
        (
            (gx as f64 + 0.1 + 0.8 * hash2(gx, gy, 40)) * CELL,
            (gy as f64 + 0.1 + 0.8 * hash2(gx, gy, 41)) * CELL,
        )
    };
    to_image(W, H, 0.035, 4, |x, y| {
        let (fx, fy) = (f64::from(x), f64::from(y));
        // Warp the domain a little so cells look grown, not cut.
        let wx = fx + 14.0 * texture.fbm(fx * 0.01, fy * 0.01, 3);
        let wy = fy + 14.0 * texture.fbm(fx * 0.01 + 9.0, fy * 0.01, 3);
        let (gx, gy) = ((wx / CELL).floor() as i64, (wy / CELL).floor() as i64);
        let (mut f1, mut f2, mut id) = (f64::MAX, f64::MAX, (0, 0));
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (sx, sy) = seed_at(gx + dx, gy + dy);
                let dist = ((wx - sx).powi(2) + (wy - sy).powi(2)).sqrt();
                if dist < f1 {
                    (f2, f1, id) = (f1, dist, (gx + dx, gy + dy));
                } else if dist < f2 {
                    f2 = dist;
                }
            }
        }
        let grain = rock.fbm(fx * 0.05, fy * 0.05, 4);
        let stone = scale(
            [0.30, 0.30, 0.28],
            0.8 + 0.35 * grain + 0.2 * rock.fbm(fx * 0.004, fy * 0.004, 2),
        );
        let which = hash2(id.0, id.1, 42);
        // Some cells are bare rock; colonies cluster along a slow field.
        let alive = texture.fbm(id.0 as f64 * 0.12, id.1 as f64 * 0.12, 2) + 0.55 > which * 0.9;
        if !alive {
            return stone;
        }
        let colour = palette(
            0.25 + 0.5 * which + 0.1 * texture.get(id.0 as f64 * 0.3, id.1 as f64 * 0.3),
            [0.50, 0.50, 0.25],
            [0.45, 0.35, 0.20],
            [1.0, 0.9, 0.7],
            [0.05, 0.15, 0.25],
        );
        let edge = smoothstep(0.0, 7.0, f2 - f1);
        let rim = smoothstep(0.0, 2.0, f2 - f1);
        let speckle = 0.75 + 0.5 * texture.fbm(fx * 0.12, fy * 0.12, 3);
        let body = scale(
            colour,
            speckle * (0.55 + 0.45 * (1.0 - f1 / (CELL * 0.9)).clamp(0.0, 1.0)),
        );
        mix(stone, mix(scale(colour, 0.25), body, edge), rim)
    })
}

/// Plate V: mountain ridges at dusk — fractal noise ridgelines receding
/// into haze under a stippled sky.
fn dusk_ridges() -> RgbImage {
    let noise = Noise { seed: 5 };
    let mut stars = Rng(55);
    let star_field: Vec<(f64, f64, f64)> = (0..900)
        .map(|_| {
            (
                stars.range(0.0, f64::from(W)),
                stars.range(0.0, f64::from(H) * 0.55),
                stars.range(0.2, 1.0),
            )
        })
        .collect();
    let mut sky_canvas = Canvas::new(W, H);
    for &(x, y, b) in &star_field {
        sky_canvas.splat(x, y, [b, b * 0.95, b * 0.85]);
    }
    const LAYERS: usize = 7;
    let ridge = |layer: usize, x: f64| -> f64 {
        let l = layer as f64;
        let base = f64::from(H) * (0.42 + 0.075 * l);
        let amp = f64::from(H) * (0.20 - 0.018 * l);
        let n = noise.fbm(x * (0.0016 + 0.0007 * l) + l * 31.0, l * 7.7, 6);
        // Sharpen peaks: ridged noise.
        base - amp * (1.0 - n.abs() * 1.6).max(0.0).powf(1.5) - amp * 0.3 * n
    };
    let heights: Vec<Vec<f64>> = (0..LAYERS)
        .map(|l| (0..W).map(|x| ridge(l, f64::from(x))).collect())
        .collect();
    let haze = [0.95, 0.55, 0.42];
    let (sun_x, sun_y) = (f64::from(W) * 0.68, f64::from(H) * 0.27);
    to_image(W, H, 0.03, 5, |x, y| {
        let (fx, fy) = (f64::from(x), f64::from(y));
        let t = fy / f64::from(H);
        let mut sky = mix(
            [0.05, 0.04, 0.16],
            [0.55, 0.20, 0.35],
            smoothstep(0.0, 0.55, t),
        );
        sky = mix(sky, haze, smoothstep(0.35, 0.62, t));
        let sun = (-((fx - sun_x).powi(2) + (fy - sun_y).powi(2)).sqrt() / 45.0).exp() * 2.0;
        sky = mix(sky, [1.0, 0.85, 0.55], sun.min(1.0));
        let star = sky_canvas.get(x, y);
        sky = [
            sky[0] + star[0] * (1.0 - t * 1.6).max(0.0),
            sky[1] + star[1] * (1.0 - t * 1.6).max(0.0),
            sky[2] + star[2] * (1.0 - t * 1.6).max(0.0),
        ];
        // The nearest layer that covers this pixel decides its colour.
        for l in (0..LAYERS).rev() {
            if fy >= heights[l][x as usize] {
                // Farther layers (lower l) fade into the haze.
                let depth = l as f64 / (LAYERS - 1) as f64;
                let rock = [
                    0.10 - 0.08 * depth,
                    0.05 - 0.03 * depth,
                    0.12 - 0.08 * depth,
                ];
                let tex = 1.0 + 0.3 * noise.fbm(fx * 0.02, fy * 0.02 + l as f64 * 5.0, 4) * depth;
                return mix(scale(rock, tex), haze, (1.0 - depth).powf(1.4) * 0.8);
            }
        }
        sky
    })
}
