/**
 * The report's small inline SVG charts besides the score histogram: the prefix's trend over its last
 * scans and the rank histogram, with the axis helpers they share with it. Static SVG (no scripts);
 * every text from the data is escaped.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import type { RankHistogram } from './report.js';
import { worstPartitions, type Trend, type TrendRun } from './trend.js';
import type { VerdictLevel } from './verdict.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const LEVEL_COLORS: Readonly<Record<VerdictLevel, string>> = {
  shifted: '#b42318',
  'possibly shifted': '#b54708',
  'no shift detected': '#027a48',
  'too few images': '#475467',
};

/** Line colours of the partitions drawn in the trend. */
const PARTITION_COLORS = ['#7a5af8', '#2e90fa', '#ee46bc', '#f79009'];

/** Partitions drawn as lines of their own in the trend chart. */
export const TREND_CHART_PARTITIONS = 4;

const pct = (x: number, digits = 0): string => `${(x * 100).toFixed(digits)}%`;

/** A round upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten, at least `x`. */
export function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}

/** A y-axis of fractions from 0 to `max` (labels in %), with light grid lines across the plot. */
export function yAxisSvg(max: number, box: { left: number; top: number; width: number; height: number }, label: string): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const y = box.top + box.height - f * box.height;
    const v = f * max;
    const digits = max < 0.04 ? 1 : 0;
    return (
      `<line x1="${box.left}" y1="${y.toFixed(1)}" x2="${box.left + box.width}" y2="${y.toFixed(1)}" stroke="#eaecf0"/>` +
      `<text x="${box.left - 4}" y="${(y + 4).toFixed(1)}" font-size="10" text-anchor="end" fill="#475467">${pct(v, digits)}</text>`
    );
  });
  const cy = box.top + box.height / 2;
  return (
    `<g class="y-axis">${ticks.join('')}<line x1="${box.left}" y1="${box.top}" x2="${box.left}" y2="${box.top + box.height}" stroke="#98a2b3"/>` +
    `<text x="10" y="${cy}" font-size="10" fill="#475467" text-anchor="middle" transform="rotate(-90 10 ${cy})">${escapeHtml(label)}</text></g>`
  );
}

/** An x tick label that is never clipped: the first is anchored at its start, the last at its end. */
export function xTick(x: number, y: number, text: string, position: 'first' | 'middle' | 'last'): string {
  const anchor = position === 'first' ? 'start' : position === 'last' ? 'end' : 'middle';
  return `<text x="${x.toFixed(1)}" y="${y}" font-size="11" text-anchor="${anchor}" fill="#475467">${escapeHtml(text)}</text>`;
}

/** A link to an object or folder: a file:// URL for local folders, the s3:// URI as it is. */
export function locationHref(uri: string, key = ''): string {
  if (uri.startsWith('s3://')) return key === '' ? uri : `${uri.replace(/\/+$/, '')}/${key}`;
  const dir = uri.startsWith('file://') ? fileURLToPath(uri) : uri;
  return pathToFileURL(key === '' ? dir : path.join(dir, key)).href;
}

/** "2026-12-02 04:52 UTC" */
const when = (iso: string): string => `${iso.slice(0, 16).replace('T', ' ')} UTC`;

function runTitle(r: TrendRun): string {
  return `${r.finishedAt}: ${pct(r.flaggedFraction, 1)} flagged (${r.flagged} of ${r.scored}), ${r.level}${r.incremental ? ', incremental' : ''}`;
}

/**
 * The trend of the prefix: the flagged fraction of every scan (a point coloured by its verdict,
 * linking to that scan's report), the expected fraction as a dashed line, and the worst few
 * partitions of scans that covered several as dashed lines of their own with square marks.
 */
export function trendSvg(trend: Trend, width = 720, height = 230): string {
  const runs = trend.runs;
  const legendW = 170;
  const box = { left: 48, top: 14, width: width - 48 - legendW - 10, height: height - 14 - 40 };
  // A scan of one partition has nothing to add to its own point: partitions are drawn from scans of several.
  const several = (r: TrendRun): boolean => r.partitions.length + r.partitionsOmitted > 1;
  const lines = worstPartitions(runs.filter(several), TREND_CHART_PARTITIONS);
  const expected = runs[runs.length - 1]?.expectedFraction ?? 0.05;
  const values = [expected * 2, ...runs.filter((r) => r.scored > 0).map((r) => r.flaggedFraction), ...runs.flatMap((r) => r.partitions.filter((p) => lines.includes(p.name) && p.scored > 0).map((p) => p.flaggedFraction))];
  const max = Math.min(1, niceCeil(Math.max(...values)));
  const step = box.width / Math.max(1, runs.length);
  const x = (i: number): number => box.left + (i + 0.5) * step;
  const y = (f: number): number => box.top + box.height - (f / max) * box.height;
  /** Polylines through consecutive runs where `value` is defined (a gap breaks the line). */
  const segments = (value: (r: TrendRun) => number | undefined): string[] => {
    const out: string[] = [];
    let cur: string[] = [];
    runs.forEach((r, i) => {
      const v = value(r);
      if (v === undefined) {
        if (cur.length > 1) out.push(cur.join(' '));
        cur = [];
        return;
      }
      cur.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    if (cur.length > 1) out.push(cur.join(' '));
    return out;
  };
  const all = (r: TrendRun): number | undefined => (r.scored > 0 ? r.flaggedFraction : undefined);
  const parts = lines.map((name, j) => {
    const color = PARTITION_COLORS[j % PARTITION_COLORS.length]!;
    const of = (r: TrendRun): TrendRun['partitions'][number] | undefined => (several(r) ? r.partitions.find((p) => p.name === name && p.scored > 0) : undefined);
    const polys = segments((r) => of(r)?.flaggedFraction).map((pts) => `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 2"/>`);
    const marks = runs.flatMap((r, i) => {
      const p = of(r);
      if (p === undefined) return [];
      return [`<rect x="${(x(i) - 3.5).toFixed(1)}" y="${(y(p.flaggedFraction) - 3.5).toFixed(1)}" width="7" height="7" fill="${LEVEL_COLORS[p.level]}" stroke="${color}" stroke-width="1.5"><title>${escapeHtml(`${name}, ${r.finishedAt}: ${pct(p.flaggedFraction, 1)} flagged (${p.flagged} of ${p.scored}), ${p.level}`)}</title></rect>`];
    });
    return polys.join('') + marks.join('');
  });
  const points = runs.map((r, i) =>
    r.scored === 0
      ? `<text x="${x(i).toFixed(1)}" y="${(box.top + box.height - 4).toFixed(1)}" font-size="10" text-anchor="middle" fill="#98a2b3">0<title>${escapeHtml(`${r.finishedAt}: no image scored`)}</title></text>`
      : `<a href="${escapeHtml(locationHref(r.out, 'report.html'))}"><circle cx="${x(i).toFixed(1)}" cy="${y(r.flaggedFraction).toFixed(1)}" r="5" fill="${LEVEL_COLORS[r.level]}" stroke="#fff" stroke-width="1.5"><title>${escapeHtml(runTitle(r))}</title></circle></a>`,
  );
  const ey = y(expected);
  const lx = box.left + box.width + 16;
  const legend = [
    `<line x1="${lx}" y1="${box.top + 6}" x2="${lx + 18}" y2="${box.top + 6}" stroke="#101828" stroke-width="2"/><text x="${lx + 24}" y="${box.top + 10}" font-size="11">all scanned images</text>`,
    ...lines.map((name, j) => {
      const ly = box.top + 24 + 18 * j;
      const short = name.length > 20 ? `${name.slice(0, 19)}…` : name;
      return `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${PARTITION_COLORS[j % PARTITION_COLORS.length]}" stroke-width="1.5" stroke-dasharray="5 2"/><text x="${lx + 24}" y="${ly + 4}" font-size="11">${escapeHtml(short)}<title>${escapeHtml(name)}</title></text>`;
    }),
  ];
  const first = runs[0];
  const last = runs[runs.length - 1];
  const xLabels =
    first === undefined || last === undefined
      ? ''
      : runs.length === 1
        ? xTick(x(0), height - 20, when(last.finishedAt), 'middle')
        : xTick(box.left, height - 20, when(first.finishedAt), 'first') + xTick(box.left + box.width, height - 20, when(last.finishedAt), 'last');
  const title = `flagged fraction over the last ${runs.length} scans`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" class="plot trend">` +
    `<title>${escapeHtml(title)}</title>` +
    yAxisSvg(max, box, 'flagged') +
    `<line x1="${box.left}" y1="${box.top + box.height}" x2="${box.left + box.width}" y2="${box.top + box.height}" stroke="#98a2b3"/>` +
    `<line x1="${box.left}" y1="${ey.toFixed(1)}" x2="${box.left + box.width}" y2="${ey.toFixed(1)}" stroke="#101828" stroke-dasharray="4 3"/>` +
    `<text x="${box.left + box.width + 4}" y="${(ey + 3).toFixed(1)}" font-size="10" fill="#101828">expected ${pct(expected, 1)}</text>` +
    parts.join('') +
    segments(all).map((pts) => `<polyline points="${pts}" fill="none" stroke="#101828" stroke-width="2"/>`).join('') +
    points.join('') +
    xLabels +
    `<text x="${(box.left + box.width / 2).toFixed(1)}" y="${height - 4}" font-size="11" text-anchor="middle" fill="#475467">${runs.length} ${runs.length === 1 ? 'scan' : 'scans'}, oldest first</text>` +
    `<g>${legend.join('')}</g>` +
    `</svg>`
  );
}

/**
 * The scan against the ID holdout by calibrated rank: the holdout is flat by construction, the scan's
 * excess shows at the right; images above every holdout score get a bar of their own ("> max").
 */
export function rankHistogramSvg(h: RankHistogram, width = 420, height = 220): string {
  const box = { left: 48, top: 12, width: width - 48 - 14, height: height - 12 - 30 };
  const bins = h.scan.length;
  const slots = bins + 1.5; // the bins, a gap, and the "> max" bar
  const bw = box.width / slots;
  const max = niceCeil(Math.max(1e-9, ...h.scan, ...h.id, h.aboveMax));
  const bar = (i: number, v: number, color: string, opacity: number): string =>
    `<rect x="${(box.left + i * bw).toFixed(1)}" y="${(box.top + box.height - (v / max) * box.height).toFixed(1)}" width="${Math.max(0.5, bw - 1).toFixed(1)}" height="${((v / max) * box.height).toFixed(1)}" fill="${color}" fill-opacity="${opacity}"/>`;
  const tx = box.left + h.threshold * bins * bw;
  const ticks = [0, 0.25, 0.75].map((f) => xTick(box.left + f * bins * bw, height - 10, pct(f), f === 0 ? 'first' : 'middle'));
  const title = 'scan against the ID holdout by calibrated rank';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" class="plot">` +
    `<title>${escapeHtml(title)}</title>` +
    yAxisSvg(max, box, 'images') +
    `<line x1="${box.left}" y1="${box.top + box.height}" x2="${box.left + box.width}" y2="${box.top + box.height}" stroke="#98a2b3"/>` +
    h.id.map((v, i) => bar(i, v, '#2e90fa', 0.55)).join('') +
    h.scan.map((v, i) => bar(i, v, '#f04438', 0.55)).join('') +
    bar(bins + 0.5, h.aboveMax, '#f04438', 0.85) +
    `<line x1="${tx.toFixed(1)}" y1="${box.top}" x2="${tx.toFixed(1)}" y2="${box.top + box.height}" stroke="#101828" stroke-dasharray="4 3" stroke-width="1.5"/>` +
    ticks.join('') +
    `<text x="${(tx - 4).toFixed(1)}" y="${box.top + 10}" font-size="11" text-anchor="end" fill="#101828">threshold ${pct(h.threshold)}</text>` +
    xTick(box.left + box.width, height - 10, '> max', 'last') +
    `<text x="${(box.left + box.width / 2).toFixed(1)}" y="${height - 10}" font-size="11" text-anchor="middle" fill="#475467">rank among ID holdout scores</text>` +
    `</svg>`
  );
}
