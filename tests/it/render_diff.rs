//! Differential test of the Graphite HTTP API (compat-spec 4) against real
//! graphite-web 1.1.8: the same points go into whisper files that a
//! graphite-web started by the test reads (graphite_web.rs) and, over carbon
//! plaintext, into an appliance with the same retention, xff and method.
//! Every target of `TARGETS` is rendered by both and the JSON compared
//! (series order, names, tags, timestamps, nulls, values within 1e-9
//! relative), then `/metrics/find`, `/metrics/expand`, `/metrics/index.json`
//! and a few output formats. One run lists every divergence.
//!
//! The fixtures end at the real now (whisper picks an archive by age, so they
//! cannot be pinned to a fixed epoch) and every request carries the same
//! `now=`, so relative times and whisper's clamping agree on both sides.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::graphite_web::{GraphiteWeb, write_whisper};
use crate::harness::{Appliance, Options, Reply, eventually, now, python};

const STEP: i64 = 10;
const RETENTIONS: &str = "10s:1d,1m:7d";
/// `slow.*` series are stored at one point a minute, to mix steps (compat-spec 4.4).
const SLOW_RETENTIONS: &str = "1m:7d";
const XFF: f64 = 0.5;
const METHOD: &str = "average";
/// Points per fixture series: 2.5 h at 10 s, so functions that read before
/// `from` (movingAverage, timeShift) find data there.
const SLOTS: i64 = 900;

/// One fixture series: its name, retentions and points (a missing slot is a null).
struct Fixture {
    name: &'static str,
    retentions: &'static str,
    points: Vec<(i64, f64)>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The fixture set, `SLOTS` slots ending at `end` (aligned to `STEP`).
fn fixtures(end: i64) -> Vec<Fixture> {
    let base = end - SLOTS * STEP;
    let ts = |i: i64| base + STEP * (i + 1);
    let series = |name: &'static str, value: &dyn Fn(i64) -> Option<f64>| Fixture {
        name,
        retentions: RETENTIONS,
        points: (0..SLOTS).filter_map(|i| value(i).map(|v| (ts(i), v))).collect(),
    };
    let counter = |name: &'static str, start: f64, inc: &dyn Fn(i64) -> f64, reset_at: Option<i64>, nulls: &[i64]| {
        let mut c = start;
        let points = (0..SLOTS)
            .filter_map(|i| {
                c = if Some(i) == reset_at { 5.0 } else { c + inc(i) };
                (!nulls.contains(&i)).then_some((ts(i), c))
            })
            .collect();
        Fixture { name, retentions: RETENTIONS, points }
    };
    let f = |i: i64| i as f64;
    vec![
        // 2-decimal gauges with scattered nulls and a gap.
        series("diff.web01.cpu", &|i| {
            (i % 37 != 5 && !(300..306).contains(&i)).then(|| round2(35.0 + 20.0 * (f(i) / 23.0).sin() + 7.0 * (f(i) / 5.3).sin()))
        }),
        series("diff.web02.cpu", &|i| (i % 23 != 7).then(|| round2(28.0 + 15.0 * (f(i) / 31.0).cos() + ((i * 7919) % 101) as f64 / 20.0))),
        series("diff.db01.cpu", &|i| {
            (i % 41 != 3 && !(500..520).contains(&i)).then(|| if i % 97 == 0 { 0.0 } else { round2(12.0 + 10.0 * (f(i) / 11.0).sin()) })
        }),
        // Integer counters; web02's resets and misses two points.
        counter("diff.web01.requests", 100_000.0, &|i| (3 + (i * 13) % 17) as f64, None, &[]),
        counter("diff.web02.requests", 2_000.0, &|i| (1 + (i * 7) % 11) as f64, Some(600), &[250, 251]),
        // A deeper path, with zeros (for invert, logarithm).
        series("diff.web01.latency.p99", &|i| {
            (i % 61 != 9).then(|| if i % 53 == 0 { 0.0 } else { round2(80.0 + ((i * 37) % 50) as f64 * 1.25) })
        }),
        // All null for the last 30 minutes.
        series("diff.db01.load", &|i| (ts(i) <= end - 1800).then(|| round2(1.5 + 0.5 * (f(i) / 7.0).sin()))),
        // One point a minute, on the minute.
        Fixture {
            name: "slow.web01.cpu",
            retentions: SLOW_RETENTIONS,
            points: ((base / 60 + 1)..=(end / 60))
                .filter(|k| k % 13 != 4)
                .map(|k| (k * 60, round2(40.0 + 10.0 * (k as f64 / 5.0).sin())))
                .collect(),
        },
    ]
}

/// Render targets, grouped by the function under test (the first field), so
/// rows of a function that instantops does not serve yet can be pruned
/// together. The third field holds extra query parameters; without a `from`
/// there, the target is rendered over both `RANGES`.
const TARGETS: &[(&str, &str, &str)] = &[
    // Plain paths and every wildcard form.
    ("path", "diff.web01.cpu", ""),
    ("path", "diff.web01.latency.p99", ""),
    ("path", "diff.*.cpu", ""),
    ("path", "diff.web0?.cpu", ""),
    ("path", "diff.web0[12].cpu", ""),
    ("path", "diff.web0[!1].cpu", ""),
    ("path", "diff.{web01,db01}.cpu", ""),
    ("path", "diff.{web,db}0{1,2}.cpu", ""),
    ("path", "diff.w*b*.requests", ""),
    ("path", "diff.web*.*", ""),
    ("path", "diff.*.latency.*", ""),
    ("path", "diff.db01.load", ""),
    ("path", "diff.nope.*", ""),
    ("path", "diff.web01.cpu", "from={F+5}&until={U-5}"),
    ("path", "diff.web01.cpu", "from={B}&until={U+60}"),
    ("path", "diff.web01.cpu", "from=-30min&until=-10min"),
    ("path", "diff.web01.cpu", "from={U}&until={F}"),
    ("path", "diff.*.cpu", "from=-2h&until=now"),
    ("path", "diff.web01.cpu", "from=now-1h&until=now-30min"),
    ("path", "diff.web01.cpu", "from=-1h30min&until=-1h"),
    ("path", "slow.web01.cpu", ""),
    ("path", "*.web01.cpu", ""),
    ("sumSeries", "sumSeries(diff.*.cpu)", ""),
    ("sumSeries", "sumSeries(diff.web01.cpu,diff.web02.cpu)", ""),
    ("sumSeries", "sum(diff.*.requests)", ""),
    ("sumSeries", "diff.*.cpu|sumSeries()", ""),
    ("sumSeries", "sumSeries(diff.nope.*)", ""),
    ("sumSeries", "sumSeries(diff.*.cpu)", "xFilesFactor=0.5"),
    ("sumSeries", "sumSeries(diff.web01.cpu,slow.web01.cpu)", ""),
    ("averageSeries", "averageSeries(diff.*.cpu)", ""),
    ("averageSeries", "avg(diff.web0[12].cpu)", ""),
    ("minSeries", "minSeries(diff.*.cpu)", ""),
    ("maxSeries", "maxSeries(diff.*.cpu)", ""),
    ("diffSeries", "diffSeries(diff.web01.cpu,diff.web02.cpu)", ""),
    ("diffSeries", "diffSeries(diff.*.cpu)", ""),
    ("diffSeries", "diffSeries(slow.web01.cpu,diff.web01.cpu)", ""),
    ("divideSeries", "divideSeries(diff.web01.requests,diff.web02.requests)", ""),
    ("divideSeries", "divideSeries(diff.web*.cpu,diff.db01.cpu)", ""),
    ("divideSeries", "divideSeries(diff.web01.cpu,diff.nope.cpu)", ""),
    ("divideSeries", "divideSeries(diff.web01.cpu,slow.web01.cpu)", ""),
    ("multiplySeries", "multiplySeries(diff.web01.cpu,diff.web02.cpu)", ""),
    ("multiplySeries", "multiplySeries(diff.web01.cpu)", ""),
    ("countSeries", "countSeries(diff.*.cpu)", ""),
    ("countSeries", "countSeries(diff.*.*,diff.web01.cpu)", ""),
    ("stddevSeries", "stddevSeries(diff.*.cpu)", ""),
    ("rangeOfSeries", "rangeOfSeries(diff.*.cpu)", ""),
    ("group", "group(diff.web01.cpu,diff.nope.cpu,diff.db01.cpu)", ""),
    ("group", "group(diff.*.requests,diff.web01.latency.p99)", ""),
    ("aggregate", "aggregate(diff.*.cpu,'sum')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'average')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'median')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'avg_zero')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'count')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'last')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'diff')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'stddev')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'range')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'multiply')", ""),
    ("aggregate", "aggregate(diff.*.cpu,'max',0.9)", ""),
    ("aggregate", "aggregate(diff.*.cpu,func='min',xFilesFactor=0.5)", ""),
    ("groupByNode", "groupByNode(diff.*.*,2,'sum')", ""),
    ("groupByNode", "groupByNode(diff.*.cpu,1)", ""),
    ("groupByNode", "groupByNode(diff.*.*,-1,'sumSeries')", ""),
    ("groupByNode", "groupByNode(diff.*.*,1,callback='max')", ""),
    ("groupByNodes", "groupByNodes(diff.*.*,'sum',1)", ""),
    ("groupByNodes", "groupByNodes(diff.*.*,'average',2,1)", ""),
    ("groupByNodes", "groupByNodes(diff.*.*,'maxSeries',-1)", ""),
    ("sumSeriesWithWildcards", "sumSeriesWithWildcards(diff.*.cpu,1)", ""),
    ("sumSeriesWithWildcards", "sumSeriesWithWildcards(diff.*.*,1)", ""),
    ("averageSeriesWithWildcards", "averageSeriesWithWildcards(diff.*.cpu,1)", ""),
    ("averageSeriesWithWildcards", "averageSeriesWithWildcards(diff.*.*,0,1)", ""),
    ("asPercent", "asPercent(diff.*.cpu)", ""),
    ("asPercent", "asPercent(diff.web01.cpu,100)", ""),
    ("asPercent", "asPercent(diff.web*.cpu,diff.db01.cpu)", ""),
    ("asPercent", "asPercent(diff.web01.requests,sumSeries(diff.*.requests))", ""),
    ("asPercent", "asPercent(diff.web0[12].cpu,diff.web0[12].requests)", ""),
    ("asPercent", "asPercent(slow.web01.cpu,diff.web01.cpu)", ""),
    ("scale", "scale(diff.web01.cpu,2)", ""),
    ("scale", "scale(diff.*.cpu,0.5)", ""),
    ("scale", "diff.web01.cpu|scale(-1.5)", ""),
    // Overflows to +inf, which graphite-web writes as 1e9999.
    ("scale", "scale(diff.web01.requests,1e305)", ""),
    ("offset", "offset(diff.web01.cpu,-20)", ""),
    ("offset", "offset(diff.*.cpu,2.5)", ""),
    ("absolute", "absolute(offset(diff.web01.cpu,-35))", ""),
    ("invert", "invert(diff.web01.latency.p99)", ""),
    ("pow", "pow(diff.web01.cpu,2)", ""),
    ("pow", "pow(diff.db01.cpu,0.5)", ""),
    ("squareRoot", "squareRoot(diff.web01.cpu)", ""),
    ("squareRoot", "squareRoot(offset(diff.web01.cpu,-35))", ""),
    ("logarithm", "log(diff.web01.latency.p99)", ""),
    ("logarithm", "log(diff.web01.cpu,2)", ""),
    ("logarithm", "log(diff.web01.requests,base=10)", ""),
    ("derivative", "derivative(diff.web01.requests)", ""),
    ("derivative", "derivative(diff.*.cpu)", ""),
    ("nonNegativeDerivative", "nonNegativeDerivative(diff.web02.requests)", ""),
    ("nonNegativeDerivative", "nonNegativeDerivative(keepLastValue(diff.web02.requests),10000)", ""),
    ("nonNegativeDerivative", "nonNegativeDerivative(keepLastValue(diff.web02.requests),maxValue=5000)", ""),
    ("nonNegativeDerivative", "nonNegativeDerivative(keepLastValue(diff.web02.requests),minValue=3)", ""),
    ("perSecond", "perSecond(diff.web01.requests)", ""),
    ("perSecond", "perSecond(diff.web*.requests)", ""),
    ("perSecond", "perSecond(keepLastValue(diff.web02.requests),maxValue=10000)", ""),
    ("integral", "integral(diff.web01.cpu)", ""),
    ("integral", "integral(diff.db01.load)", ""),
    ("keepLastValue", "keepLastValue(diff.db01.cpu)", ""),
    ("keepLastValue", "keepLastValue(diff.db01.cpu,3)", ""),
    ("keepLastValue", "keepLastValue(diff.db01.load)", ""),
    ("transformNull", "transformNull(diff.db01.cpu)", ""),
    ("transformNull", "transformNull(diff.db01.cpu,-1)", ""),
    ("transformNull", "transformNull(diff.db01.cpu,default=5.5)", ""),
    ("transformNull", "transformNull(diff.db01.load,0,diff.web01.cpu)", ""),
    // graphite-web 1.1.8 ignores a series list given as a keyword argument:
    // this renders as transformNull(diff.db01.load,0), no reference.
    ("transformNull", "transformNull(diff.db01.load,0,referenceSeries=diff.web01.cpu)", ""),
    ("isNonNull", "isNonNull(diff.*.cpu)", ""),
    ("changed", "changed(diff.web01.requests)", ""),
    ("changed", "changed(diff.db01.cpu)", ""),
    ("delay", "delay(diff.web01.cpu,3)", ""),
    ("delay", "delay(diff.web01.cpu,-2)", ""),
    ("timeShift", "timeShift(diff.web01.cpu,\"1h\")", ""),
    ("timeShift", "timeShift(diff.web01.cpu,\"-1h\")", ""),
    ("timeShift", "timeShift(diff.*.cpu,'+10min')", ""),
    ("timeShift", "timeShift(diff.web01.cpu,'30min',resetEnd=false)", ""),
    ("summarize", "summarize(diff.web01.requests,\"5min\")", ""),
    ("summarize", "summarize(diff.*.cpu,\"5min\",\"avg\")", ""),
    ("summarize", "summarize(diff.web01.cpu,\"1h\",\"max\")", ""),
    ("summarize", "summarize(diff.web01.cpu,\"7min\",\"sum\",true)", ""),
    ("summarize", "summarize(diff.db01.cpu,'10min','last',alignToFrom=true)", ""),
    ("summarize", "summarize(diff.db01.cpu,intervalString='3min',func='min')", ""),
    ("consolidateBy", "consolidateBy(diff.web01.cpu,'max')", "maxDataPoints=100"),
    ("consolidateBy", "consolidateBy(diff.*.cpu,'sum')", "maxDataPoints=33"),
    ("consolidateBy", "consolidateBy(diff.web01.cpu,'min')", ""),
    ("consolidateBy", "sumSeries(consolidateBy(diff.web01.cpu,'max'),slow.web01.cpu)", ""),
    ("cumulative", "cumulative(diff.web01.cpu)", "maxDataPoints=50"),
    ("scaleToSeconds", "scaleToSeconds(diff.web01.requests,1)", ""),
    ("scaleToSeconds", "scaleToSeconds(diff.web01.cpu,60)", ""),
    ("movingAverage", "movingAverage(diff.web01.cpu,5)", ""),
    ("movingAverage", "movingAverage(diff.web01.cpu,\"5min\")", ""),
    ("movingAverage", "movingAverage(diff.db01.cpu,10,0.5)", ""),
    ("movingAverage", "movingAverage(diff.*.cpu,windowSize='1min')", ""),
    ("movingSum", "movingSum(diff.web01.requests,6)", ""),
    ("movingSum", "movingSum(diff.db01.cpu,'2min')", ""),
    ("movingMin", "movingMin(diff.web01.cpu,10)", ""),
    ("movingMin", "movingMin(diff.db01.cpu,'5min')", ""),
    ("movingMax", "movingMax(diff.web01.cpu,10)", ""),
    ("movingMax", "movingMax(diff.db01.load,'5min')", ""),
    ("movingMedian", "movingMedian(diff.web01.cpu,5)", ""),
    ("movingMedian", "movingMedian(diff.db01.cpu,'1min')", ""),
    ("nPercentile", "nPercentile(diff.web01.cpu,95)", ""),
    ("nPercentile", "nPercentile(diff.*.cpu,50)", ""),
    ("highestCurrent", "highestCurrent(diff.*.cpu,2)", ""),
    ("highestCurrent", "highestCurrent(group(diff.*.cpu,diff.db01.load),4)", ""),
    ("highestCurrent", "highestCurrent(group(diff.db01.load,diff.*.cpu),3)", "from=-20min"),
    ("highestMax", "highestMax(diff.*.cpu,1)", ""),
    ("highestMax", "highestMax(diff.*.*,2)", ""),
    ("highestAverage", "highestAverage(diff.*.cpu,2)", ""),
    ("lowestCurrent", "lowestCurrent(group(diff.*.cpu,diff.db01.load),2)", ""),
    ("lowestCurrent", "lowestCurrent(group(diff.*.cpu,diff.db01.load),2)", "from=-20min"),
    ("lowestAverage", "lowestAverage(diff.*.cpu,1)", ""),
    ("currentAbove", "currentAbove(diff.*.cpu,20)", ""),
    ("currentBelow", "currentBelow(group(diff.*.cpu,diff.db01.load),25)", ""),
    ("averageAbove", "averageAbove(diff.*.cpu,20)", ""),
    ("averageBelow", "averageBelow(diff.*.cpu,30)", ""),
    ("maximumAbove", "maximumAbove(diff.*.cpu,50)", ""),
    ("maximumBelow", "maximumBelow(diff.*.cpu,50)", ""),
    ("minimumAbove", "minimumAbove(diff.*.cpu,10)", ""),
    ("minimumBelow", "minimumBelow(diff.*.cpu,10)", ""),
    ("limit", "limit(diff.*.cpu,2)", ""),
    ("limit", "limit(diff.*.cpu,0)", ""),
    ("exclude", "exclude(diff.*.*,'web0[12]')", ""),
    ("grep", "grep(diff.*.*,'requests$')", ""),
    ("removeEmptySeries", "removeEmptySeries(diff.db01.*)", ""),
    ("removeEmptySeries", "removeEmptySeries(diff.db01.*)", "from=-20min"),
    ("removeEmptySeries", "removeEmptySeries(diff.db01.*,0.9)", ""),
    ("removeAboveValue", "removeAboveValue(diff.*.cpu,25)", ""),
    ("removeBelowValue", "removeBelowValue(diff.*.cpu,15.5)", ""),
    ("sortByName", "sortByName(group(diff.web02.cpu,diff.db01.cpu,diff.web01.cpu))", ""),
    ("sortByName", "sortByName(diff.*.*,reverse=true)", ""),
    ("sortByName", "sortByName(diff.*.*,true)", ""),
    ("sortByMaxima", "sortByMaxima(diff.*.cpu)", ""),
    ("sortByMinima", "sortByMinima(diff.*.*)", ""),
    ("sortByTotal", "sortByTotal(diff.*.cpu)", ""),
    ("sortBy", "sortBy(diff.*.cpu,'max',true)", ""),
    ("sortBy", "sortBy(diff.*.cpu)", ""),
    ("movingWindow", "movingWindow(diff.web01.cpu,'5min','median')", ""),
    ("movingWindow", "movingWindow(diff.web01.cpu,6,'sum',0.5)", ""),
    ("highest", "highest(diff.*.cpu,2,'max')", ""),
    ("lowest", "lowest(diff.*.cpu,2,'sum')", ""),
    ("filterSeries", "filterSeries(diff.*.cpu,'max','>',50)", ""),
    ("filterSeries", "filterSeries(diff.*.cpu,'last','<=',20)", ""),
    ("multiplySeriesWithWildcards", "multiplySeriesWithWildcards(diff.*.cpu,1)", ""),
    ("substr", "substr(diff.web01.latency.p99,1,3)", ""),
    ("substr", "substr(scale(diff.web01.latency.p99,2),2)", ""),
    ("unique", "unique(diff.*.cpu,diff.web01.cpu)", ""),
    ("drawAsInfinite", "drawAsInfinite(diff.web01.cpu)", ""),
    ("alpha", "alpha(diff.web01.cpu,0.5)", ""),
    ("minMax", "minMax(diff.web01.cpu)", ""),
    ("alias", "alias(diff.web01.cpu,'web one')", ""),
    ("alias", "alias(sumSeries(diff.*.cpu),\"total cpu\")", ""),
    ("aliasByNode", "aliasByNode(diff.*.cpu,1)", ""),
    ("aliasByNode", "aliasByNode(diff.*.*,1,2)", ""),
    ("aliasByNode", "aliasByNode(diff.*.cpu,-2)", ""),
    ("aliasByNode", "aliasByNode(scale(diff.web01.latency.p99,2),-1)", ""),
    ("aliasByNode", "aliasByNode(sumSeries(diff.web0[12].cpu),1)", ""),
    ("aliasByNode", "aliasByNode(scale(diff.web01.cpu,2),1)", ""),
    ("aliasByNode", "diff.web01.cpu|scale(2)|aliasByNode(1)", ""),
    ("aliasByNode", "scale(diff.web01.cpu,2)|aliasByNode(1)", ""),
    ("aliasByNode", "aliasByNode(diff.web01.cpu|scale(2),1)", ""),
    ("aliasByMetric", "aliasByMetric(diff.*.cpu)", ""),
    ("aliasByMetric", "aliasByMetric(scale(diff.web01.latency.p99,2))", ""),
    ("aliasSub", "aliasSub(diff.*.cpu,'^diff\\.(\\w+)\\.cpu$','\\1 cpu')", ""),
    ("aliasSub", "aliasSub(diff.*.requests,'web','host-')", ""),
    ("constantLine", "constantLine(42)", ""),
    ("constantLine", "constantLine(1.5)", ""),
    ("threshold", "threshold(30)", ""),
    ("threshold", "threshold(30,'limit')", ""),
    ("threshold", "threshold(30.5,'limit','red')", ""),
    ("color", "color(diff.web01.cpu,'red')", ""),
    ("lineWidth", "lineWidth(diff.web01.cpu,3)", ""),
    ("dashed", "dashed(diff.web01.cpu)", ""),
    ("secondYAxis", "secondYAxis(diff.web01.cpu)", ""),
    ("stacked", "stacked(diff.*.cpu)", ""),
    ("stacked", "stacked(diff.*.cpu,'cpus')", ""),
    ("hitcount", "hitcount(diff.web01.requests,\"5min\")", ""),
    ("hitcount", "hitcount(diff.db01.cpu,\"1h\")", ""),
    ("hitcount", "hitcount(diff.web01.cpu,\"7min\",true)", ""),
    ("hitcount", "hitcount(slow.web01.cpu,\"10min\")", ""),
    ("hitcount", "hitcount(diff.web01.cpu,'1h',alignToInterval=true)", ""),
    ("hitcount", "hitcount(diff.db01.load,'45s')", ""),
    ("asPercent", "asPercent(diff.*.*,None,1)", ""),
    ("asPercent", "asPercent(diff.*.*,diff.*.cpu,1)", ""),
    ("asPercent", "asPercent(diff.web*.requests,diff.*.cpu,1)", ""),
    ("asPercent", "asPercent(diff.*.cpu,diff.db01.load,1)", ""),
    ("asPercent", "asPercent(diff.*.*,None,-1)", ""),
    ("pct", "pct(diff.*.cpu)", ""),
    ("pct", "pct(diff.*.*,None,1,2)", ""),
    ("percentileOfSeries", "percentileOfSeries(diff.*.cpu,50)", ""),
    ("percentileOfSeries", "percentileOfSeries(diff.*.cpu,90,true)", ""),
    ("percentileOfSeries", "percentileOfSeries(diff.*.*,75)", ""),
    ("percentileOfSeries", "percentileOfSeries(group(diff.web01.cpu,slow.web01.cpu),50)", ""),
    ("groupByTags", "groupByTags(diff.*.cpu,'sum','name')", ""),
    ("groupByTags", "groupByTags(diff.*.*,'sumSeries','name')", ""),
    ("sumSeriesLists", "sumSeriesLists(diff.web0*.cpu,diff.web0*.requests)", ""),
    ("diffSeriesLists", "diffSeriesLists(diff.web0*.requests,diff.web0*.cpu)", ""),
    ("multiplySeriesLists", "multiplySeriesLists(diff.web0*.cpu,diff.web0*.cpu)", ""),
    ("divideSeriesLists", "divideSeriesLists(diff.web0*.cpu,diff.web0*.requests)", ""),
    ("divideSeriesLists", "divideSeriesLists(diff.web01.cpu,slow.web01.cpu)", ""),
    ("aggregateSeriesLists", "aggregateSeriesLists(diff.web0*.cpu,diff.web0*.requests,'max')", ""),
    ("aggregateSeriesLists", "aggregateSeriesLists(diff.web01.cpu,slow.web01.cpu,'average',0.5)", ""),
    ("aggregateWithWildcards", "aggregateWithWildcards(diff.*.cpu,'sum',1)", ""),
    ("aggregateWithWildcards", "aggregateWithWildcards(diff.*.*,'max',1)", ""),
    ("aggregateWithWildcards", "aggregateWithWildcards(diff.*.*,'median',0,2)", ""),
    ("powSeries", "powSeries(diff.web01.cpu,diff.db01.load)", ""),
    ("powSeries", "powSeries(diff.db01.cpu,diff.web01.latency.p99)", ""),
    ("powSeries", "powSeries(offset(diff.web01.cpu,-35),diff.db01.load)", ""),
    ("weightedAverage", "weightedAverage(diff.web0*.cpu,diff.web0*.requests,1)", ""),
    ("weightedAverage", "weightedAverage(diff.*.cpu,diff.*.cpu,1)", ""),
    ("reduceSeries", "reduceSeries(mapSeries(diff.web0*.*,1),'divideSeries',2,'cpu','requests')", ""),
    ("reduceSeries", "reduce(map(diff.web0*.*,1),'asPercent',2,'cpu','requests')", ""),
    ("reduceSeries", "reduceSeries(mapSeries(diff.web0*.*,1),'sumSeries',2,'requests','cpu')", ""),
    ("applyByNode", "applyByNode(diff.*.cpu,1,'sumSeries(%.*)')", ""),
    ("applyByNode", "applyByNode(diff.*.cpu,1,'maxSeries(%.*)','% max')", ""),
    ("interpolate", "interpolate(diff.db01.cpu)", ""),
    ("interpolate", "interpolate(diff.db01.cpu,5)", ""),
    ("interpolate", "interpolate(diff.web02.requests)", ""),
    ("integralByInterval", "integralByInterval(diff.web01.cpu,'1h')", ""),
    ("integralByInterval", "integralByInterval(diff.db01.cpu,'10min')", ""),
    ("timeStack", "timeStack(diff.web01.cpu,'10min',0,3)", ""),
    ("timeStack", "timeStack(diff.*.cpu,'30min',1,3)", ""),
    ("timeStack", "timeStack(diff.web01.cpu)", ""),
    ("timeSlice", "timeSlice(diff.web01.cpu,'20200101','20300101')", ""),
    ("smartSummarize", "smartSummarize(diff.web01.cpu,'5min')", ""),
    ("smartSummarize", "smartSummarize(diff.web01.requests,'1h','max')", ""),
    ("smartSummarize", "smartSummarize(diff.db01.cpu,'10min','average','minutes')", ""),
    ("smartSummarize", "smartSummarize(diff.web01.cpu,'1h','sum','hours')", ""),
    ("smartSummarize", "smartSummarize(diff.web01.cpu,'30min','last','days')", ""),
    ("add", "add(diff.web01.cpu,5)", ""),
    ("add", "add(diff.*.cpu,-1.5)", ""),
    ("exp", "exp(diff.db01.load)", ""),
    ("sigmoid", "sigmoid(scale(diff.web01.cpu,0.1))", ""),
    ("logit", "logit(scale(diff.web01.cpu,0.01))", ""),
    ("logit", "logit(diff.db01.load)", ""),
    ("logit", "logit(scale(diff.db01.cpu,0.05))", ""),
    ("round", "round(diff.web01.cpu)", ""),
    ("round", "round(diff.web01.cpu,1)", ""),
    ("round", "round(scale(diff.web01.cpu,0.333),2)", ""),
    ("round", "round(diff.web01.requests,-2)", ""),
    ("offsetToZero", "offsetToZero(diff.*.cpu)", ""),
    ("offsetToZero", "offsetToZero(diff.db01.load)", ""),
    ("exponentialMovingAverage", "exponentialMovingAverage(diff.web01.cpu,5)", ""),
    ("exponentialMovingAverage", "exponentialMovingAverage(diff.db01.cpu,'5min')", ""),
    ("exponentialMovingAverage", "exponentialMovingAverage(diff.*.cpu,10)", ""),
    ("linearRegression", "linearRegression(diff.web01.requests)", ""),
    ("linearRegression", "linearRegression(diff.*.cpu)", ""),
    ("stdev", "stdev(diff.web01.cpu,5)", ""),
    ("stdev", "stdev(diff.db01.cpu,10,0.5)", ""),
    ("stdev", "stdev(diff.*.cpu,3)", ""),
    ("aggregateLine", "aggregateLine(diff.web01.cpu)", ""),
    ("aggregateLine", "aggregateLine(diff.*.cpu,'max')", ""),
    ("aggregateLine", "aggregateLine(diff.db01.cpu,'sum',true)", ""),
    ("aggregateLine", "aggregateLine(diff.db01.load)", "from=-20min"),
    ("identity", "identity('the.time')", ""),
    ("time", "time('t')", ""),
    ("time", "timeFunction('t',600)", ""),
    ("sin", "sin('wave')", ""),
    ("sin", "sinFunction('wave',5,120)", ""),
    ("events", "events('deploy')", ""),
    ("events", "events('deploy','web')", "from=-10min"),
    ("verticalLine", "verticalLine('20250101','jan')", "from=20200101&until=20300101"),
    ("areaBetween", "areaBetween(diff.web0[12].cpu)", ""),
    ("areaBetween", "areaBetween(group(diff.db01.cpu,scale(diff.web01.cpu,2)))", ""),
    ("setXFilesFactor", "setXFilesFactor(diff.db01.cpu,0.9)", "maxDataPoints=50"),
    ("setXFilesFactor", "sumSeries(xFilesFactor(diff.*.cpu,1))", ""),
    ("setXFilesFactor", "xFilesFactor(diff.*.cpu,0)", "maxDataPoints=70"),
    ("fallbackSeries", "fallbackSeries(diff.nope.*,diff.web01.cpu)", ""),
    ("fallbackSeries", "fallbackSeries(diff.web01.cpu,diff.db01.cpu)", ""),
    ("cactiStyle", "cactiStyle(diff.*.cpu)", ""),
    ("cactiStyle", "cactiStyle(diff.*.requests,'si')", ""),
    ("cactiStyle", "cactiStyle(diff.*.requests,'binary','req')", ""),
    ("cactiStyle", "cactiStyle(group(diff.db01.load,diff.web01.cpu),units='load')", "from=-20min"),
    ("legendValue", "legendValue(diff.*.cpu,'avg')", ""),
    ("legendValue", "legendValue(diff.*.cpu,'last','max')", ""),
    ("legendValue", "legendValue(diff.*.requests,'sum','si')", ""),
    ("legendValue", "legendValue(diff.web01.cpu,'bogus','count')", ""),
    ("legendValue", "legendValue(diff.db01.load,'last','binary')", "from=-20min"),
    ("aliasQuery", "aliasQuery(diff.web0*.cpu,'cpu$','requests','%d requests')", ""),
    ("aliasQuery", "aliasQuery(diff.*.cpu,'cpu','cpu','now %.1f%%')", ""),
    ("mostDeviant", "mostDeviant(diff.*.cpu,2)", ""),
    ("mostDeviant", "mostDeviant(diff.*.*,1)", ""),
    ("useSeriesAbove", "useSeriesAbove(diff.web01.requests,100000,'requests','cpu')", "from={F}&until={U}"),
    ("useSeriesAbove", "useSeriesAbove(diff.web01.requests,1e12,'requests','cpu')", "from={F}&until={U}"),
    ("averageOutsidePercentile", "averageOutsidePercentile(diff.*.cpu,30)", ""),
    ("averageOutsidePercentile", "averageOutsidePercentile(diff.*.*,80)", ""),
    (
        "removeBetweenPercentile",
        "removeBetweenPercentile(group(diff.web01.requests,scale(diff.web01.requests,2),offset(diff.web01.requests,5)),30)",
        "from={F}&until={U}",
    ),
    ("removeAbovePercentile", "removeAbovePercentile(diff.web01.cpu,90)", ""),
    ("removeAbovePercentile", "removeAbovePercentile(diff.*.cpu,50)", ""),
    ("removeAbovePercentile", "removeAbovePercentile(diff.db01.load,50)", "from=-20min"),
    ("removeBelowPercentile", "removeBelowPercentile(diff.db01.cpu,10)", ""),
    ("removeBelowPercentile", "removeBelowPercentile(diff.*.cpu,75.5)", ""),
    ("holtWintersForecast", "holtWintersForecast(diff.web01.cpu)", ""),
    ("holtWintersForecast", "holtWintersForecast(diff.web01.cpu,'30min','10min')", ""),
    ("holtWintersConfidenceBands", "holtWintersConfidenceBands(diff.web01.cpu,3,'30min','10min')", ""),
    ("holtWintersConfidenceBands", "holtWintersConfidenceBands(diff.db01.cpu)", ""),
    ("holtWintersConfidenceArea", "holtWintersConfidenceArea(diff.web01.cpu,2,'1h','20min')", ""),
    ("holtWintersAberration", "holtWintersAberration(diff.web01.cpu,3,'30min','10min')", ""),
    ("holtWintersAberration", "holtWintersAberration(diff.db01.cpu,1,'30min','5min')", ""),
    ("interpolate", "interpolate(group(diff.web01.latency.p99,diff.web02.requests),1)", ""),
    ("hitcount", "hitcount(summarize(diff.web01.requests,'1min','last'),'5min')", ""),
    ("round", "round(scale(diff.db01.load,10),0)", ""),
    ("smartSummarize", "smartSummarize(diff.web01.cpu,'1d','average','weeks')", ""),
    ("linearRegression", "linearRegression(diff.db01.load)", "from=-20min"),
    ("holtWintersForecast", "holtWintersForecast(slow.web01.cpu,'1h','30min')", ""),
    ("exponentialMovingAverage", "exponentialMovingAverage(slow.web01.cpu,'10min')", ""),
    ("percentileOfSeries", "percentileOfSeries(diff.nope.*,50)", ""),
];

/// Every target without its own `from` is rendered over each of these.
const RANGES: &[&str] = &["from={F}&until={U}", "from=-1h"];

/// `/metrics/find`, `/metrics/expand` queries.
/// Requests graphite-web refuses with 400 (its body is an HTML-escaped
/// message): instantops must refuse them too. Compared on the status only.
/// A /render query string, or a whole path.
const REFUSED: &[&str] = &[
    "/metrics/find",
    "/metrics/find?query=",
    "target=diff.web01.cpu&from=-5m",
    "target=diff.web01.cpu&from={F}&until={F}",
    "target=diff.web01.cpu&from=yesterdayish",
    "target=nosuchfunction(diff.web01.cpu)&from=-1h",
    "target=divideSeries(diff.web01.cpu,diff.*.cpu)&from=-1h",
    "target=asPercent(diff.*.cpu,diff.web*.cpu)&from=-1h",
    "target=asPercent(diff.*.cpu,100,1)&from=-1h",
    "target=percentileOfSeries(diff.*.cpu,0)&from=-1h",
    "target=sumSeriesLists(diff.*.cpu,diff.web01.cpu)&from=-1h",
    "target=divideSeriesLists(diff.*.cpu,diff.web*.cpu)&from=-1h",
    "target=weightedAverage(diff.*.cpu,diff.web01.cpu,1)&from=-1h",
    "target=verticalLine('20000101')&from=-1h",
    "target=aliasQuery(diff.web01.cpu,'cpu','nope','%d')&from=-1h",
];

const FIND_QUERIES: &[&str] = &[
    "diff.*",
    "diff.web01.*",
    "diff.*.cpu",
    "diff.web*",
    "diff.{web01,db01}.*",
    "diff.*.latency.*",
    "diff.web0[12].cpu",
    "*",
    "diff.nope.*",
];

/// The fixture window's epochs, for `{F}`-style placeholders in query strings.
struct Window {
    /// The last point's timestamp.
    end: i64,
}

impl Window {
    /// The `now=` of every request: one step after the last point.
    fn now(&self) -> i64 {
        self.end + STEP
    }

    fn fill(&self, params: &str) -> String {
        let (f, u, b) = (self.end - 7200, self.end, self.end - SLOTS * STEP);
        params
            .replace("{F+5}", &(f + 5).to_string())
            .replace("{U-5}", &(u - 5).to_string())
            .replace("{U+60}", &(u + 60).to_string())
            .replace("{F}", &f.to_string())
            .replace("{U}", &u.to_string())
            .replace("{B}", &(b - 100).to_string())
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Parses a JSON answer; graphite writes +-Infinity as `1e9999`, which
/// serde_json refuses, so those become the strings "inf" / "-inf".
fn parse(body: &str) -> Result<Value, String> {
    let body = body.replace("-1e9999", "\"-inf\"").replace("1e9999", "\"inf\"");
    serde_json::from_str(&body).map_err(|e| format!("not JSON ({e})"))
}

fn cut(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= (1e-9 * a.abs().max(b.abs())).max(1e-12)
}

/// The first difference between two /render JSON answers, or None.
fn render_difference(want: &Value, got: &Value) -> Option<String> {
    let (Some(want), Some(got)) = (want.as_array(), got.as_array()) else {
        return Some("not both JSON arrays".into());
    };
    if want.len() != got.len() {
        let names = |v: &[Value]| v.iter().map(|s| s["target"].to_string()).collect::<Vec<_>>().join(", ");
        return Some(format!("{} series [{}] vs {} [{}]", want.len(), names(want), got.len(), names(got)));
    }
    for (k, (w, g)) in want.iter().zip(got).enumerate() {
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        if keys(w) != keys(g) {
            return Some(format!("series #{k}: keys {:?} vs {:?}", keys(w), keys(g)));
        }
        if w["target"] != g["target"] {
            return Some(format!("series #{k}: target {} vs {}", w["target"], g["target"]));
        }
        if w["tags"] != g["tags"] {
            return Some(format!("series #{k} {}: tags {} vs {}", w["target"], w["tags"], g["tags"]));
        }
        let (Some(wp), Some(gp)) = (w["datapoints"].as_array(), g["datapoints"].as_array()) else {
            return Some(format!("series #{k}: datapoints not arrays"));
        };
        if wp.len() != gp.len() {
            let span = |p: &[Value]| {
                format!("{} .. {}", p.first().map_or("-".into(), |x| x.to_string()), p.last().map_or("-".into(), |x| x.to_string()))
            };
            return Some(format!("series #{k} {}: {} points ({}) vs {} ({})", w["target"], wp.len(), span(wp), gp.len(), span(gp)));
        }
        for (wv, gv) in wp.iter().zip(gp) {
            let same = wv[1] == gv[1]
                && match (&wv[0], &gv[0]) {
                    (Value::Number(a), Value::Number(b)) => close(a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN)),
                    (a, b) => a == b,
                };
            if !same {
                return Some(format!("series #{k} {}: point {wv} vs {gv}", w["target"]));
            }
        }
    }
    None
}

/// graphite-web sorts completer entries by `name` only, and entries of one
/// name (`diff.web01.cpu`, `diff.web02.cpu`) come in the order its finder
/// threads happen to return them: this sorts such ties by path so both
/// sides compare equal. Other answers pass through unchanged.
fn completer_tied(mut v: Value) -> Value {
    if let Some(metrics) = v.get_mut("metrics").and_then(Value::as_array_mut) {
        let key = |m: &Value| (m.get("path").is_none(), m["name"].as_str().unwrap_or_default().to_string(), m["path"].to_string());
        metrics.sort_by_key(key);
    }
    v
}

/// A completer answer's order as graphite-web makes it: entries sorted by
/// name, the `{"name": "*"}` entry (no path) last. `None` if not so.
fn completer_order(v: &Value) -> Option<()> {
    let Some(metrics) = v.get("metrics").and_then(Value::as_array) else { return Some(()) };
    let key = |m: &Value| (m.get("path").is_none(), m["name"].as_str().unwrap_or_default().to_string());
    metrics.windows(2).all(|w| key(&w[0]) <= key(&w[1])).then_some(())
}

/// Collects divergences; one run reports all of them.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, what: &str, why: &str, want: &Reply, got: &Reply) {
        self.0.push(format!(
            "{what}\n    {why}\n    graphite-web {}: {}\n    instantops   {}: {}",
            want.status,
            cut(&want.body, 400),
            got.status,
            cut(&got.body, 400)
        ));
    }
}

/// Either side of the comparison.
trait Api {
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply;
}

impl Api for GraphiteWeb {
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        self.request(method, path, headers, body)
    }
}

impl Api for Appliance {
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        self.request(method, path, headers, body)
    }
}

fn base_type(reply: &Reply) -> String {
    let ct = reply.headers.get("content-type").map(String::as_str).unwrap_or_default();
    ct.split(';').next().unwrap_or_default().trim().to_string()
}

/// Sends the fixtures to the appliance over carbon plaintext TCP and waits
/// until its store has accepted every point.
fn feed(app: &Appliance, fixtures: &[Fixture]) {
    let before = app.counter("instantops_tsdb_points_total");
    let mut text = String::new();
    let mut total = 0usize;
    for f in fixtures {
        for (t, v) in &f.points {
            let _ = writeln!(text, "{} {v} {t}", f.name);
            total += 1;
        }
    }
    app.send_tcp("carbon_tcp", text.as_bytes());
    let want = before + total as f64;
    eventually(Duration::from_secs(30), "instantops to store every fixture point", || {
        (app.counter("instantops_tsdb_points_total") >= want).then_some(())
    });
}

fn config() -> String {
    format!(
        "[[carbon.schemas]]\nname = \"slow\"\npattern = \"^slow\\\\.\"\nretentions = \"{SLOW_RETENTIONS}\"\n\n\
         [[carbon.schemas]]\nname = \"diff\"\npattern = \".*\"\nretentions = \"{RETENTIONS}\"\n\n\
         [[carbon.aggregation]]\nname = \"diff\"\npattern = \".*\"\nx_files_factor = {XFF}\nmethod = \"{METHOD}\"\n"
    )
}

#[test]
fn render_matches_graphite_web() {
    let started = Instant::now();
    let t = now();
    // The last point ends on hh:m4:30 or hh:m9:30, 30 s to 5.5 min ago: the
    // alignments that steps, 5-minute buckets and maxDataPoints depend on
    // are the same on every run, and 60 s series start off the 10 s grid.
    let window = Window { end: t - t.rem_euclid(300) - 30 };
    let fixtures = fixtures(window.end);
    let whisper = tempfile::tempdir().expect("temp dir");
    let whisper_dir = whisper.path().join("whisper");
    std::fs::create_dir_all(&whisper_dir).expect("whisper dir");

    // Whisper files, graphite-web and the appliance come up side by side.
    let (web, app) = std::thread::scope(|s| {
        let web = s.spawn(|| {
            for f in &fixtures {
                write_whisper(&whisper_dir, f.name, f.retentions, XFF, METHOD, &f.points);
            }
            GraphiteWeb::start(&whisper_dir)
        });
        // statsd off: its own metrics would join the namespace graphite-web lists.
        let app = Appliance::start_with(
            Options::default().config(&config()).env("INSTANTOPS_STATSD__UDP", "off").env("INSTANTOPS_STATSD__TCP", "off"),
        );
        feed(&app, &fixtures);
        (web.join().expect("graphite-web thread"), app)
    });
    eprintln!("render_diff: fixtures in both after {:?}", started.elapsed());
    let subject: &dyn Api = &app;

    let mut failures = Failures::default();
    let now_param = format!("now={}", window.now());
    let compare_render = |what: &str, query: &str, failures: &mut Failures| {
        let path = format!("/render?{query}&{now_param}");
        let want = web.call("GET", &path, &[], None);
        let got = subject.call("GET", &path, &[], None);
        if want.status != 200 {
            failures.add(what, "graphite-web itself did not answer 200: fix the table", &want, &got);
            return;
        }
        let diff = match (parse(&want.body), parse(&got.body)) {
            (Ok(w), Ok(g)) => render_difference(&w, &g),
            (Err(e), _) => Some(format!("graphite-web: {e}")),
            (_, Err(e)) => Some(format!("instantops: {e}")),
        };
        if got.status != want.status || diff.is_some() {
            failures.add(what, &diff.unwrap_or_else(|| format!("status {} vs {}", want.status, got.status)), &want, &got);
        }
    };

    for (func, target, extra) in TARGETS {
        let extra = window.fill(extra);
        // Extra parameters with their own `from` replace the ranges; others are added to each.
        let (ranges, added) = if extra.contains("from=") {
            (vec![extra.clone()], String::new())
        } else {
            (RANGES.iter().map(|r| window.fill(r)).collect(), if extra.is_empty() { extra.clone() } else { format!("&{extra}") })
        };
        for range in &ranges {
            let query = format!("target={}&{range}&format=json{added}", enc(target));
            compare_render(&format!("[{func}] {target} ({range}{added})"), &query, &mut failures);
        }
    }

    // Output formats and parameters, one target each.
    let abs = window.fill("from={F}&until={U}");
    let one = enc("diff.db01.cpu");
    for params in [
        "maxDataPoints=50",
        "maxDataPoints=1",
        "maxDataPoints=5000",
        "maxDataPoints=abc",
        "noNullPoints=1",
        "xFilesFactor=0.9&maxDataPoints=70",
    ] {
        compare_render(&format!("[format] diff.db01.cpu {params}"), &format!("target={one}&{abs}&format=json&{params}"), &mut failures);
    }
    compare_render(
        "[format] mixed steps, maxDataPoints=50",
        &format!("target={}&{abs}&format=json&maxDataPoints=50", enc("*.web01.cpu")),
        &mut failures,
    );
    compare_render(
        "[format] several targets in order, noNullPoints",
        &format!(
            "target={}&target={}&target={}&{abs}&format=json&noNullPoints=1",
            enc("diff.db01.load"),
            enc("diff.*.cpu"),
            enc("diff.nope")
        ),
        &mut failures,
    );
    for format in ["csv", "raw", "jsonp"] {
        let fmt = if format == "jsonp" { "format=json&jsonp=cb".to_string() } else { format!("format={format}") };
        let path = format!("/render?target={one}&{abs}&{fmt}&{now_param}");
        let want = web.call("GET", &path, &[], None);
        let got = subject.call("GET", &path, &[], None);
        if want.status != 200 {
            failures.add(&format!("[format] {format}"), "graphite-web itself did not answer 200", &want, &got);
        } else if got.status != 200 || got.body != want.body || base_type(&got) != base_type(&want) {
            let why = format!(
                "content type {:?} vs {:?}, bodies {}",
                base_type(&want),
                base_type(&got),
                if got.body == want.body { "equal" } else { "differ" }
            );
            failures.add(&format!("[format] {format} (exact text)"), &why, &want, &got);
        }
    }
    // pickle is binary: Python's own unpickler reads both answers and compares
    // the lists of dicts (name, start, end, step, values, pathExpression, ...).
    let pickled = format!("/render?target={}&target={one}&{abs}&format=pickle&{now_param}", enc("sumSeries(diff.*.cpu)"));
    let verdict = python(
        "import pickle, sys, urllib.request\n\
         a, b = (pickle.loads(urllib.request.urlopen(u).read()) for u in sys.argv[1:3])\n\
         print('same' if a == b and len(a) == 2 else 'differ\\n%r\\n%r' % (a, b))",
        &[&format!("http://{}{pickled}", web.addr), &app.url(&pickled)],
    );
    if verdict.trim() != "same" {
        failures.0.push(format!("[format] pickle (unpickled)\n    {}", cut(&verdict, 2000)));
    }
    let form = format!("target={}&target={one}&{abs}&format=json&{now_param}", enc("sumSeries(diff.*.cpu)"));
    let post_headers = [("content-type", "application/x-www-form-urlencoded")];
    let want = web.call("POST", "/render", &post_headers, Some(form.as_bytes()));
    let want_get = web.call("GET", &format!("/render?{form}"), &[], None);
    assert!(
        want.status == 200 && want.body == want_get.body,
        "graphite-web: a form POST /render differs from the GET\n{}\n{}",
        want.body,
        want_get.body
    );
    let got = subject.call("POST", "/render", &post_headers, Some(form.as_bytes()));
    let diff = match (parse(&want.body), parse(&got.body)) {
        (Ok(w), Ok(g)) => render_difference(&w, &g),
        (_, Err(e)) => Some(format!("instantops: {e}")),
        (Err(e), _) => Some(format!("graphite-web: {e}")),
    };
    if let Some(why) = diff {
        failures.add("[format] form-encoded POST /render", &why, &want, &got);
    }

    for query in REFUSED {
        let path =
            if query.starts_with('/') { query.to_string() } else { format!("/render?{}&format=json&{now_param}", window.fill(query)) };
        let want = web.call("GET", &path, &[], None);
        let got = subject.call("GET", &path, &[], None);
        if want.status != 400 {
            failures.add(&format!("[refused] {query}"), "graphite-web itself did not answer 400: fix the table", &want, &got);
        } else if got.status != 400 {
            failures.add(&format!("[refused] {query}"), &format!("status {} vs {}", want.status, got.status), &want, &got);
        }
    }

    // The metrics tree.
    let compare_json = |what: String, path: String, failures: &mut Failures| {
        let want = web.call("GET", &path, &[], None);
        let got = subject.call("GET", &path, &[], None);
        if want.status != 200 {
            failures.add(&what, "graphite-web itself did not answer 200: fix the table", &want, &got);
            return;
        }
        match (parse(&want.body), parse(&got.body)) {
            (Ok(w), Ok(g))
                if got.status == 200 && completer_order(&g).is_some() && completer_tied(w.clone()) == completer_tied(g.clone()) => {}
            (Ok(_), Ok(g)) => {
                let why = completer_order(&g).map_or("completer entries not sorted by name, `*` last", |_| "JSON differs");
                failures.add(&what, why, &want, &got)
            }
            (_, Err(e)) => failures.add(&what, &format!("instantops: {e}"), &want, &got),
            (Err(e), _) => failures.add(&what, &format!("graphite-web: {e}"), &want, &got),
        }
    };
    for q in FIND_QUERIES {
        for params in ["", "&format=completer", "&wildcards=1", "&format=completer&wildcards=1", "&leavesOnly=1"] {
            compare_json(format!("[find] {q}{params}"), format!("/metrics/find?query={}{params}", enc(q)), &mut failures);
        }
        for params in ["", "&leavesOnly=1", "&groupByExpr=1"] {
            compare_json(format!("[expand] {q}{params}"), format!("/metrics/expand?query={}{params}", enc(q)), &mut failures);
        }
    }
    compare_json(
        "[expand] two queries".into(),
        format!("/metrics/expand?query={}&query={}&groupByExpr=1", enc("diff.web*"), enc("diff.db01.*")),
        &mut failures,
    );
    compare_json("[index] /metrics/index.json".into(), "/metrics/index.json".into(), &mut failures);

    eprintln!("render_diff: compared in {:?}, {} divergences", started.elapsed(), failures.0.len());
    assert!(failures.0.is_empty(), "{} answers differ from graphite-web:\n\n{}", failures.0.len(), failures.0.join("\n\n"));
}
