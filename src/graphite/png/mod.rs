//! `/render?format=png`: graphite-web's default line graph (glyph.py's
//! `LineGraph` with the black "classic" look) drawn without a graphics
//! library: options, layout and drawing here; axis ticks and labels in
//! `axes.rs`; the raster (anti-aliased thick lines clipped to the plot) and
//! the 5x7 bitmap font in `raster.rs`; a minimal PNG encoder in `encode.rs`.

use super::series::Series;

mod axes;
mod encode;
mod raster;

use axes::*;
use encode::*;
use raster::*;

// ---------------------------------------------------------------- options

/// glyph.py's `colorAliases`.
const COLOR_NAMES: [(&str, [u8; 3]); 22] = [
    ("black", [0, 0, 0]),
    ("white", [255, 255, 255]),
    ("blue", [100, 100, 255]),
    ("green", [0, 200, 0]),
    ("red", [200, 0, 50]),
    ("yellow", [255, 255, 0]),
    ("orange", [255, 165, 0]),
    ("purple", [200, 100, 255]),
    ("brown", [150, 100, 50]),
    ("cyan", [0, 255, 255]),
    ("aqua", [0, 150, 150]),
    ("gray", [175, 175, 175]),
    ("grey", [175, 175, 175]),
    ("magenta", [255, 0, 255]),
    ("pink", [255, 100, 100]),
    ("gold", [200, 200, 0]),
    ("rose", [200, 150, 200]),
    ("darkblue", [0, 0, 255]),
    ("darkgreen", [0, 255, 0]),
    ("darkred", [255, 0, 0]),
    ("darkgray", [111, 111, 111]),
    ("darkgrey", [111, 111, 111]),
];

/// glyph.py's default `linecolors`.
const DEFAULT_COLORS: &str = "blue,green,red,purple,brown,yellow,aqua,grey,magenta,pink,gold,rose";
/// The classic template's grid colors (`majorLine`, `minorLine`) and the legend box outline.
const MAJOR_GRID: [u8; 3] = [255, 255, 255];
const MINOR_GRID: [u8; 3] = [175, 175, 175];
const DARK_GREY: [u8; 3] = [111, 111, 111];
const MAX_SIZE: u32 = 4000;
const MAX_LINE_WIDTH: f64 = 100.0;

/// The graph options of a render request that this renderer honours.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub width: u32,
    pub height: u32,
    pub title: Option<String>,
    pub hide_legend: bool,
    pub hide_axes: bool,
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
    pub line_width: f64,
    pub bg: [u8; 3],
    pub fg: [u8; 3],
    /// One per series, cycling.
    pub colors: Vec<[u8; 3]>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            width: 330,
            height: 250,
            title: None,
            hide_legend: false,
            hide_axes: false,
            y_min: None,
            y_max: None,
            line_width: 1.2,
            bg: [0, 0, 0],
            fg: [255, 255, 255],
            colors: parse_color_list(DEFAULT_COLORS).unwrap_or_default(),
        }
    }
}

impl Options {
    /// graphite-web's parameter names; the last of repeated values wins (Django's
    /// `QueryDict`), and empty or `default` values keep the default.
    pub fn from_params(params: &[(String, String)]) -> Result<Options, String> {
        let get =
            |key: &str| params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty() && *v != "default");
        let mut o = Options::default();
        if let Some(v) = get("width") {
            o.width = parse_size("width", v)?;
        }
        if let Some(v) = get("height") {
            o.height = parse_size("height", v)?;
        }
        o.title = get("title").map(str::to_string);
        o.hide_legend = get("hideLegend").is_some_and(truthy);
        o.hide_axes = get("hideAxes").is_some_and(truthy);
        o.y_min = get("yMin").or_else(|| get("min")).map(|v| parse_limit("yMin", v)).transpose()?.flatten();
        o.y_max = get("yMax").or_else(|| get("max")).map(|v| parse_limit("yMax", v)).transpose()?.flatten();
        if let (Some(lo), Some(hi)) = (o.y_min, o.y_max)
            && lo >= hi
        {
            return Err(format!("yMin ({lo}) must be less than yMax ({hi})"));
        }
        if let Some(v) = get("lineWidth").or_else(|| get("thickness")) {
            o.line_width = v
                .parse::<f64>()
                .ok()
                .filter(|w| *w > 0.0 && *w <= MAX_LINE_WIDTH)
                .ok_or_else(|| format!("lineWidth must be a number above 0 and at most {MAX_LINE_WIDTH}, not {v:?}"))?;
        }
        if let Some(v) = get("bgcolor") {
            o.bg = parse_color(v).ok_or_else(|| format!("bgcolor: unknown color {v:?}"))?;
        }
        if let Some(v) = get("fgcolor") {
            o.fg = parse_color(v).ok_or_else(|| format!("fgcolor: unknown color {v:?}"))?;
        }
        if let Some(v) = get("colorList") {
            o.colors = parse_color_list(v)?;
        }
        Ok(o)
    }
}

fn parse_size(name: &str, v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_SIZE).contains(n))
        .ok_or_else(|| format!("{name} must be an integer from 1 to {MAX_SIZE}, not {v:?}"))
}

/// graphite-web's coercion: `false` and numeric zero are false, anything else true.
fn truthy(v: &str) -> bool {
    !(v.eq_ignore_ascii_case("false") || v.parse::<f64>().is_ok_and(|n| n == 0.0))
}

/// An axis limit: a finite number; `max` (yMax=max) and NaN mean "from the data".
fn parse_limit(name: &str, v: &str) -> Result<Option<f64>, String> {
    match v.parse::<f64>() {
        Ok(n) if n.is_nan() => Ok(None),
        Ok(n) if n.is_finite() => Ok(Some(n)),
        _ if v == "max" => Ok(None),
        _ => Err(format!("{name} must be a finite number, not {v:?}")),
    }
}

/// A color alias or `RRGGBB` hex (optionally `#`/`%23`-prefixed; an alpha byte is ignored).
fn parse_color(v: &str) -> Option<[u8; 3]> {
    let v = v.trim();
    if let Some((_, rgb)) = COLOR_NAMES.iter().find(|(name, _)| *name == v) {
        return Some(*rgb);
    }
    let hex = v.strip_prefix('#').or_else(|| v.strip_prefix("%23")).unwrap_or(v);
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

fn parse_color_list(v: &str) -> Result<Vec<[u8; 3]>, String> {
    v.split(',').map(|c| parse_color(c).ok_or_else(|| format!("colorList: unknown color {c:?}"))).collect()
}

// ---------------------------------------------------------------- graph

/// glyph.py's `margin` and legend `padding`.
const MARGIN: f64 = 10.0;
const PADDING: f64 = 5.0;

/// The plot area in pixels (glyph.py's `area`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Area {
    xmin: f64,
    xmax: f64,
    ymin: f64,
    ymax: f64,
}

/// A PNG line graph of the series: graphite-web's default `/render` image.
pub fn render(series: &[Series], from: i64, until: i64, options: &Options) -> Vec<u8> {
    encode_png(&draw(series, from, until, options).0)
}

/// The picture, and its plot area (None for the "No Data" image).
fn draw(series: &[Series], from: i64, until: i64, o: &Options) -> (Canvas, Option<Area>) {
    let mut canvas = Canvas::new(o.width, o.height, o.bg);
    if !series.iter().any(|s| s.values.iter().flatten().any(|v| v.is_finite())) {
        let (w, h) = (f64::from(o.width), f64::from(o.height));
        canvas.text(w / 2.0, h / 2.0 - TEXT_MIDDLE, "No Data", o.fg, 0.5);
        return (canvas, None);
    }
    let palette = if o.colors.is_empty() { Options::default().colors } else { o.colors.clone() };
    let colors: Vec<[u8; 3]> = (0..series.len()).map(|i| palette[i % palette.len()]).collect();
    let (start, end) = time_range(series, from, until);
    let mut area = Area { xmin: MARGIN + 10.0, xmax: f64::from(o.width) - MARGIN, ymin: MARGIN, ymax: f64::from(o.height) - MARGIN };
    if let Some(title) = o.title.as_deref().filter(|t| !t.is_empty()) {
        draw_title(&mut canvas, &mut area, title, o.fg);
    }
    if !o.hide_legend {
        let entries: Vec<(&str, [u8; 3])> =
            series.iter().zip(&colors).filter(|(s, _)| !s.name.is_empty()).map(|(s, c)| (s.name.as_str(), *c)).collect();
        draw_legend(&mut canvas, &mut area, &entries, o.fg);
    }
    if !o.hide_axes {
        area.ymax -= 2.0 * ASCENT;
    }
    // Consolidate to the plot's width and fit the y labels; wider labels narrow
    // the plot, which can change the consolidation (glyph.py loops the same way).
    let mut graph_width;
    let mut lines;
    let mut y_axis;
    loop {
        graph_width = area.xmax - area.xmin - (o.line_width + 1.0);
        lines = series.iter().map(|s| consolidate(s, graph_width, end - start)).collect::<Vec<_>>();
        y_axis = YAxis::new(data_limits(&lines), o.y_min, o.y_max);
        let xmin = area.xmin.max(MARGIN + y_axis.label_width() * 1.02);
        if o.hide_axes || xmin == area.xmin {
            break;
        }
        area.xmin = xmin;
    }
    if graph_width < 1.0 || area.ymax - area.ymin < 1.0 {
        return (canvas, Some(area));
    }
    let x_axis = XAxis::new(start, end, area.xmin, graph_width);
    if o.hide_axes {
        y_axis.labels.clear(); // glyph.py then scales by the limits, not the labels
    } else {
        draw_labels(&mut canvas, &area, &y_axis, &x_axis, o.fg);
        draw_grid(&mut canvas, &area, &y_axis, &x_axis);
    }
    let mut stroke = Stroke::new(&area);
    for ((s, (points, stride)), color) in series.iter().zip(&lines).zip(&colors) {
        let x = |i: usize| x_axis.x(s.start + i as i64 * stride) + o.line_width / 2.0;
        let mut run: Vec<(f64, f64)> = Vec::new();
        for (i, v) in points.iter().enumerate() {
            match v.filter(|v| v.is_finite()) {
                Some(v) => run.push((x(i), y_axis.y(v, &area))),
                None => stroke.polyline(&std::mem::take(&mut run), o.line_width / 2.0),
            }
        }
        stroke.polyline(&run, o.line_width / 2.0);
        stroke.paint(&mut canvas, *color);
    }
    (canvas, Some(area))
}

/// glyph.py's x range: first start to last point (`end - step`), or the
/// request's range when the series have a single point.
fn time_range(series: &[Series], from: i64, until: i64) -> (i64, i64) {
    let start = series.iter().map(|s| s.start).min().unwrap_or(from);
    let end = series.iter().map(|s| s.end - s.step).max().unwrap_or(until);
    if end > start {
        return (start, end);
    }
    let end = series.iter().map(|s| s.end).max().unwrap_or(until);
    if end > start { (start, end) } else { (from, until.max(from + 1)) }
}

/// glyph.py's `consolidateDataPoints`: at most one point per pixel. Returns the
/// points and the seconds between them.
fn consolidate(s: &Series, graph_width: f64, time_range: i64) -> (Vec<Option<f64>>, i64) {
    let step = s.step.max(1);
    let points = time_range as f64 / step as f64;
    if graph_width >= 1.0 && graph_width / points < 1.0 {
        let per_pixel = (points / graph_width.floor()).ceil() as usize;
        let consolidated = Series { vpp: per_pixel, ..s.clone() };
        return (consolidated.points(), step * per_pixel as i64);
    }
    (s.points(), step * s.vpp.max(1) as i64)
}

/// The smallest and largest finite value drawn, (0, 1) if none.
fn data_limits(lines: &[(Vec<Option<f64>>, i64)]) -> (f64, f64) {
    let values = || lines.iter().flat_map(|(points, _)| points.iter().flatten().copied().filter(|v| v.is_finite()));
    match (values().reduce(f64::min), values().reduce(f64::max)) {
        (Some(lo), Some(hi)) => (lo, hi),
        _ => (0.0, 1.0),
    }
}

fn draw_title(canvas: &mut Canvas, area: &mut Area, title: &str, fg: [u8; 3]) {
    let mut y = area.ymin;
    for line in title.split('\n') {
        // glyph.py sets titles a size larger; here they are bold (struck twice).
        for dx in [-0.5, 0.5] {
            canvas.text(f64::from(canvas.width) / 2.0 + dx, y, line, fg, 0.5);
        }
        y += LINE_HEIGHT;
    }
    area.ymin = y + MARGIN;
}

/// glyph.py's legend: rows of color box and name under the plot, as many
/// columns as the longest name allows; the plot gives up the height.
fn draw_legend(canvas: &mut Canvas, area: &mut Area, entries: &[(&str, [u8; 3])], fg: [u8; 3]) {
    let Some(longest) = entries.iter().map(|(name, _)| text_width(name)).reduce(f64::max) else {
        return;
    };
    let box_size = LINE_HEIGHT - 1.0;
    let line_height = LINE_HEIGHT + 1.0;
    let label_width = longest + 2.0 * (box_size + PADDING);
    let columns = (f64::from(canvas.width) / label_width).floor().max(1.0) as usize;
    let rows = entries.len().div_ceil(columns);
    area.ymax -= rows as f64 * line_height + PADDING;
    let (mut x, mut y) = (area.xmin, area.ymax + 2.0 * PADDING);
    for (i, (name, color)) in entries.iter().enumerate() {
        let (bx, by, size) = (x as i32, y as i32, box_size as i32);
        canvas.fill(bx, by, size, size, *color);
        canvas.outline(bx, by, size, size, DARK_GREY);
        canvas.text(x + box_size + PADDING, y, name, fg, 0.0);
        x += label_width;
        if (i + 1) % columns == 0 {
            x = area.xmin;
            y += line_height;
        }
    }
}

fn draw_labels(canvas: &mut Canvas, area: &Area, y_axis: &YAxis, x_axis: &XAxis, fg: [u8; 3]) {
    let x = area.xmin - y_axis.label_width() * 0.02;
    for (value, label) in &y_axis.labels {
        let y = y_axis.y(*value, area).max(0.0);
        canvas.text(x, y - TEXT_MIDDLE, label, fg, 1.0);
    }
    let (unit, step) = x_axis.conf.label;
    for t in x_axis.ticks(unit, step) {
        canvas.text(x_axis.x(t), area.ymax + ASCENT, &strftime(t, x_axis.conf.format), fg, 0.5);
    }
}

/// Grid lines as glyph.py strokes them (hairlines of 0.25 to 0.5 px, here as
/// 1 px lines of that opacity), then the plot's side borders.
fn draw_grid(canvas: &mut Canvas, area: &Area, y_axis: &YAxis, x_axis: &XAxis) {
    for (i, (value, _)) in y_axis.labels.iter().enumerate() {
        canvas.hline(area.xmin, area.xmax, y_axis.y(*value, area), MAJOR_GRID, 0.4);
        if let Some((next, _)) = y_axis.labels.get(i + 1) {
            let minor = (value + next) / 2.0;
            if minor < y_axis.top {
                canvas.hline(area.xmin, area.xmax, y_axis.y(minor, area), MINOR_GRID, 0.3);
            }
        }
    }
    for ((unit, step), color, alpha) in [(x_axis.conf.minor, MINOR_GRID, 0.25), (x_axis.conf.major, MAJOR_GRID, 0.33)] {
        for t in x_axis.ticks(unit, step) {
            let x = x_axis.x(t);
            if x < area.xmax {
                canvas.vline(x, area.ymin, area.ymax, color, alpha);
            }
        }
    }
    canvas.vline(area.xmin, area.ymin, area.ymax, MAJOR_GRID, 0.5);
    canvas.vline(area.xmax, area.ymin, area.ymax, MAJOR_GRID, 0.5);
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const T0: i64 = 1_715_731_200; // 2024-05-15 00:00 UTC
    const BLUE: [u8; 3] = [100, 100, 255];
    const GREEN: [u8; 3] = [0, 200, 0];
    const RED: [u8; 3] = [200, 0, 50];

    struct Image {
        width: usize,
        height: usize,
        rgb: Vec<u8>,
    }

    impl Image {
        fn at(&self, x: usize, y: usize) -> [u8; 3] {
            let i = 3 * (y * self.width + x);
            [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
        }

        /// Pixels in columns x0..x1 and rows y0..y1 (clamped to the image) that match.
        fn count(&self, (x0, x1): (f64, f64), (y0, y1): (f64, f64), want: impl Fn([u8; 3]) -> bool) -> usize {
            let clamp = |v: f64, max: usize| (v.max(0.0) as usize).min(max);
            let (x0, x1, y0, y1) = (clamp(x0, self.width), clamp(x1, self.width), clamp(y0, self.height), clamp(y1, self.height));
            (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).filter(|(x, y)| want(self.at(*x, *y))).count()
        }

        fn everywhere(&self, want: impl Fn([u8; 3]) -> bool) -> usize {
            self.count((0.0, self.width as f64), (0.0, self.height as f64), want)
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A minimal PNG reader for 8-bit RGB: chunk layout, every CRC, zlib, all five filters.
    fn decode(png: &[u8]) -> Image {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let (mut pos, mut kinds, mut idat, mut size) = (8, Vec::new(), Vec::new(), (0, 0));
        while pos < png.len() {
            let len = be(pos);
            let (kind, data) = (&png[pos + 4..pos + 8], &png[pos + 8..pos + 8 + len]);
            assert_eq!(be(pos + 8 + len) as u32, crc32(&png[pos + 4..pos + 8 + len]), "CRC of {kind:?}");
            match kind {
                b"IHDR" => {
                    size = (be(pos + 8), be(pos + 12));
                    assert_eq!(&data[8..], &[8, 2, 0, 0, 0]);
                }
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => assert!(data.is_empty()),
                other => panic!("unexpected chunk {other:?}"),
            }
            kinds.push(kind.to_vec());
            pos += 12 + len;
        }
        assert_eq!((kinds.first().unwrap().as_slice(), kinds.last().unwrap().as_slice()), (&b"IHDR"[..], &b"IEND"[..]));
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
        let (width, height) = size;
        let stride = 3 * width;
        assert_eq!(raw.len(), height * (stride + 1));
        let mut rgb = vec![0u8; height * stride];
        for y in 0..height {
            let (kind, line) = (raw[y * (stride + 1)], &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)]);
            for i in 0..stride {
                let a = if i >= 3 { rgb[y * stride + i - 3] } else { 0 };
                let b = if y > 0 { rgb[(y - 1) * stride + i] } else { 0 };
                let c = if i >= 3 && y > 0 { rgb[(y - 1) * stride + i - 3] } else { 0 };
                let predicted = match kind {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                    4 => {
                        let p = i16::from(a) + i16::from(b) - i16::from(c);
                        let (pa, pb, pc) = ((p - i16::from(a)).abs(), (p - i16::from(b)).abs(), (p - i16::from(c)).abs());
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    other => panic!("filter type {other}"),
                };
                rgb[y * stride + i] = line[i].wrapping_add(predicted);
            }
        }
        Image { width, height, rgb }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A day at 10 s steps of a wave.
    fn wave(name: &str, amplitude: f64, phase: f64) -> Series {
        let values = (0..8640).map(|i| Some(amplitude * (1.2 + (f64::from(i) / 700.0 + phase).sin()))).collect();
        Series::new(name, T0, T0 + 86_400, 10, values, 0.0)
    }

    fn three() -> Vec<Series> {
        vec![wave("servers.web1.cpu", 40.0, 0.0), wave("servers.web2.cpu", 30.0, 2.0), wave("servers.db1.cpu", 20.0, 4.0)]
    }

    /// The decoded image, checked against the canvas it was encoded from, and the plot area.
    fn picture(series: &[Series], options: &Options) -> (Image, Option<Area>) {
        let (canvas, area) = draw(series, T0, T0 + 86_400, options);
        let image = decode(&render(series, T0, T0 + 86_400, options));
        assert_eq!((image.width, image.height), (options.width as usize, options.height as usize));
        assert_eq!(image.rgb, canvas.rgb);
        (image, area)
    }

    fn inside(area: &Area) -> ((f64, f64), (f64, f64)) {
        ((area.xmin, area.xmax), (area.ymin, area.ymax))
    }

    /// A pixel at least about 80% covered by the color (over black).
    fn near(color: [u8; 3]) -> impl Fn([u8; 3]) -> bool {
        move |c| c.iter().zip(color).all(|(a, b)| a.abs_diff(b) <= 52)
    }

    fn bluish(c: [u8; 3]) -> bool {
        c[2] > c[0].saturating_add(40)
    }

    #[test]
    fn draws_each_series_inside_the_plot_on_a_dominant_background() {
        let (image, area) = picture(&three(), &Options::default());
        let area = area.unwrap();
        assert!(image.everywhere(|c| c == [0, 0, 0]) * 2 > image.width * image.height);
        let (xs, ys) = inside(&area);
        for color in [BLUE, GREEN, RED] {
            assert!(image.count(xs, ys, near(color)) > 200, "{color:?}");
        }
        assert!(area.xmin > 30.0 && area.ymax < 250.0 - 3.0 * LINE_HEIGHT, "{area:?}");
    }

    #[test]
    fn lines_stay_inside_the_plot_area() {
        let options = Options { y_min: Some(20.0), y_max: Some(50.0), colors: vec![[255, 0, 255]], ..Options::default() };
        let (image, area) = picture(&[wave("a", 40.0, 0.0)], &Options { hide_legend: true, ..options });
        let area = area.unwrap();
        let magenta = |c: [u8; 3]| c[0] > 60 && c[1] < c[0] / 2 && c[2] > 60;
        let (xs, ys) = inside(&area);
        assert!(image.count(xs, ys, magenta) > 100);
        assert_eq!(image.everywhere(magenta), image.count((xs.0.floor(), xs.1.ceil()), (ys.0.floor(), ys.1.ceil()), magenta));
    }

    #[test]
    fn extreme_values_and_sizes_still_render() {
        let values = vec![Some(1e308), Some(-1e308), Some(f64::INFINITY), Some(f64::NAN), Some(0.0), Some(1e-300)];
        let series = [Series::new("x", T0, T0 + 60, 10, values, 0.0)];
        for (width, height) in [(1, 1), (30, 20), (330, 250)] {
            let options = Options { width, height, title: Some("é".into()), ..Options::default() };
            let (image, _) = picture(&series, &options);
            assert_eq!((image.width, image.height), (width as usize, height as usize));
        }
    }

    #[test]
    fn gaps_break_lines_and_lone_points_are_dots() {
        let values = (0..100).map(|i| match i {
            _ if (40..60).contains(&i) || ((70..80).contains(&i) && i != 75) => None,
            _ => Some(f64::from(i % 7)),
        });
        let series = [Series::new("gappy", T0, T0 + 6000, 60, values.collect(), 0.0)];
        let options = Options::default();
        let (image, area) = picture(&series, &options);
        let area = area.unwrap();
        let graph_width = area.xmax - area.xmin - (options.line_width + 1.0);
        let x = |i: f64| area.xmin + options.line_width / 2.0 + i * graph_width / 99.0;
        let column = |from: f64, to: f64| image.count((from, to), (area.ymin, area.ymax), bluish);
        assert!(column(x(10.0), x(39.0)) > 0);
        assert_eq!(column(x(39.0) + 2.0, x(60.0) - 2.0), 0, "the gap 40..60 is empty");
        assert_eq!(column(x(70.0) + 2.0, x(75.0) - 2.0), 0);
        assert!(column(x(75.0) - 1.5, x(75.0) + 1.5) > 0, "the lone point is drawn");
        assert_eq!(column(x(75.0) + 2.0, x(80.0) - 2.0), 0);
    }

    #[test]
    fn no_data_image() {
        let empty = Series::new("a.b", T0, T0 + 600, 60, vec![None; 10], 0.0);
        for series in [vec![], vec![empty]] {
            let (image, area) = picture(&series, &Options::default());
            assert!(area.is_none());
            let white = image.everywhere(|c| c == [255, 255, 255]);
            assert!(white > 30, "{white}");
            assert_eq!(image.count((0.0, 330.0), (0.0, 110.0), |c| c != [0, 0, 0]), 0, "text is centered");
            assert_eq!(image.everywhere(|c| c != [0, 0, 0] && c != [255, 255, 255]), 0, "no series colors");
        }
        let options = Options::from_params(&params(&[("width", "800"), ("height", "600"), ("bgcolor", "white"), ("fgcolor", "black")]));
        let (image, _) = picture(&[], &options.unwrap());
        assert!(image.everywhere(|c| c == [0, 0, 0]) > 30);
    }

    #[test]
    fn legend_shows_a_swatch_per_series_and_the_title_sits_on_top() {
        let mut series = three();
        series.push(wave("a.rather.long.series.name.for.the.legend", 10.0, 1.0));
        series.push(wave("short", 5.0, 3.0));
        let options = Options::from_params(&params(&[("title", "CPU"), ("colorList", "blue,green,red,%23ff8000,cyan")])).unwrap();
        let (image, area) = picture(&series, &options);
        let area = area.unwrap();
        let legend = (area.ymax + 2.0 * ASCENT, 250.0);
        for color in [BLUE, GREEN, RED, [255, 128, 0], [0, 255, 255]] {
            assert!(image.count((0.0, 330.0), legend, |c| c == color) >= 50, "{color:?}");
        }
        assert!(image.count((0.0, 330.0), (0.0, area.ymin), |c| c == [255, 255, 255]) > 10, "title");
        let rows = (0..250).filter(|y| image.count((0.0, 25.0), (f64::from(*y), f64::from(y + 1)), |c| c == DARK_GREY) > 0);
        assert!(rows.count() >= 3 * 10, "five entries take three rows");
    }

    #[test]
    fn y_ticks_and_labels_follow_glyph() {
        let labels = |lo: f64, hi: f64, y_min: Option<f64>, y_max: Option<f64>| {
            YAxis::new((lo, hi), y_min, y_max).labels.into_iter().map(|(_, l)| l).collect::<Vec<_>>().join("|")
        };
        assert_eq!(labels(0.0, 95.0, None, None), "0 |20.0 |40.0 |60.0 |80.0 |100.0 ");
        assert_eq!(labels(0.0, 4500.0, None, None), "0 |1.0 k |2.0 k |3.0 k |4.0 k |5.0 k ");
        assert_eq!(labels(3.0, 7.2, None, None), "3.0 |4.0 |5.0 |6.0 |7.0 |8.0 ");
        assert_eq!(labels(-12.0, 37.0, None, None), "-20 |-10 |0 |10.0 |20.0 |30.0 |40.0 ");
        assert_eq!(labels(0.0, 2.5e6, None, None), "0 |500.0 k |1000.0 k |1500.0 k |2000.0 k |2500.0 k ");
        assert_eq!(labels(0.001, 0.0042, None, None), "0.001 |0.002 |0.003 |0.004 |0.005 ");
        assert_eq!(labels(100.0, 100.0, None, None), "90.0 |95.0 |100.0 |105.0 |110.0 ");
        assert_eq!(labels(0.0, 0.35, None, None), "0 |0.10 |0.20 |0.30 |0.40 ");
        assert_eq!(labels(995.0, 1003.0, None, None), "994.0 |996.0 |998.0 |1000.0 |1002.0 |1004.0 ");
        assert_eq!(labels(0.0, 95.0, Some(10.0), Some(50.0)), "10.0 |20.0 |30.0 |40.0 |50.0 ");
        assert_eq!(labels(-1e308, 1e308, None, None).matches('|').count(), 4, "huge ranges stay finite");
        let g: Vec<String> = [0.0001234, 1234567.0, 0.5, 1e-5, 123456.0, 1e16, -0.05].into_iter().map(fmt_g).collect();
        assert_eq!(g, ["0.0001234", "1.23457e+06", "0.5", "1e-05", "123456", "1e+16", "-0.05"]);
    }

    #[test]
    fn x_labels_follow_glyph() {
        let labels = |range: i64, width: f64| {
            let axis = XAxis::new(T0 + 50, T0 + 50 + range, 0.0, width);
            let (unit, step) = axis.conf.label;
            axis.ticks(unit, step).map(|t| strftime(t, axis.conf.format)).collect::<Vec<_>>()
        };
        // Expected values from glyph.py's xAxisConfigs and find_x_times.
        assert_eq!(labels(3600, 290.0), ["00:20", "00:40", "01:00"]);
        assert_eq!(labels(86_400, 290.0), ["05/15 12:00", "05/16 00:00"]);
        assert_eq!(labels(3 * 86_400, 290.0), ["05/16", "05/17", "05/18"]);
        assert_eq!(labels(30 * 86_400, 290.0)[..4], ["05/22", "05/29", "06/05", "06/12"]);
        assert_eq!(labels(300, 290.0), ["00:01", "00:02", "00:03", "00:04", "00:05"]);
        assert_eq!(labels(86_400, 750.0)[..2], ["Wed 04:00", "Wed 08:00"]);
        assert_eq!(strftime(T0 + 3 * 86_400 + 3661, "%a %H:%M:%S %Y"), "Sat 01:01:01 2024");
    }

    #[test]
    fn options_from_params() {
        let d = Options::from_params(&[]).unwrap();
        assert_eq!(d, Options::default());
        assert_eq!((d.width, d.height, d.line_width, d.bg, d.fg), (330, 250, 1.2, [0, 0, 0], [255, 255, 255]));
        assert_eq!(d.colors.len(), 12);
        assert_eq!(d.colors[..3], [BLUE, GREEN, RED]);
        let o = Options::from_params(&params(&[
            ("width", "100"),
            ("width", "800"),
            ("height", "4000"),
            ("title", "a\nb"),
            ("hideLegend", "true"),
            ("hideAxes", "1"),
            ("yMin", "-5"),
            ("max", "7.5"),
            ("thickness", "3"),
            ("bgcolor", "#FFFFFF"),
            ("fgcolor", "darkgrey"),
            ("colorList", "ff000080, %2300ff00,rose"),
        ]))
        .unwrap();
        assert_eq!((o.width, o.height, o.title.as_deref(), o.hide_legend, o.hide_axes), (800, 4000, Some("a\nb"), true, true));
        assert_eq!((o.y_min, o.y_max, o.line_width, o.bg, o.fg), (Some(-5.0), Some(7.5), 3.0, [255; 3], DARK_GREY));
        assert_eq!(o.colors, [[255, 0, 0], [0, 255, 0], [200, 150, 200]]);
        let o = Options::from_params(&params(&[("hideLegend", "false"), ("hideAxes", "0"), ("yMax", "max"), ("width", "")])).unwrap();
        assert_eq!((o.hide_legend, o.hide_axes, o.y_max, o.width), (false, false, None, 330));
        let err = |pairs: &[(&str, &str)]| Options::from_params(&params(pairs)).unwrap_err();
        assert!(err(&[("width", "0")]).contains("from 1 to 4000"));
        assert!(err(&[("height", "4001")]).contains("height must be an integer from 1 to 4000"));
        assert!(err(&[("width", "12.5")]).contains("width"));
        assert!(err(&[("bgcolor", "blurple")]).contains("bgcolor"));
        assert!(err(&[("colorList", "red,,blue")]).contains("colorList"));
        assert!(err(&[("yMin", "5"), ("yMax", "5")]).contains("less than"));
        assert!(err(&[("yMin", "inf")]).contains("finite"));
        assert!(err(&[("lineWidth", "0")]).contains("lineWidth"));
    }

    #[test]
    fn writes_sample_images() {
        let dir = std::env::temp_dir();
        let options = Options { title: Some("servers.*.cpu".into()), ..Options::default() };
        std::fs::write(dir.join("instantops-graph.png"), render(&three(), T0, T0 + 86_400, &options)).unwrap();
        std::fs::write(dir.join("instantops-nodata.png"), render(&[], T0, T0 + 86_400, &Options::default())).unwrap();
    }
}
