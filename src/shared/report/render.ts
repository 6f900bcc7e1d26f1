/**
 * Renders a scan report as a self-contained HTML page (inline CSS and SVG, thumbnails as data URIs;
 * no scripts, fonts or network) and as a short Markdown summary for a chat or a ticket.
 */
import type { Histogram, ReportImage, ScanReport } from './report.js';
import type { ConditionsVerdict, PropertyDrift } from './drift.js';
import { formatP, type Verdict } from './verdict.js';
import { formatAccounting } from '../outputs/accounting.js';
import { escapeHtml, LEVEL_COLORS, locationHref, niceCeil, rankHistogramSvg, trendSvg, xTick, yAxisSvg } from './charts.js';
import type { Trend } from './trend.js';

export { escapeHtml };

/**
 * Text from the data (keys, folder names, URIs) as inert Markdown: every character Markdown gives a
 * meaning (emphasis, links, images, headings, tables, code, HTML) is backslash-escaped, and line
 * breaks become spaces, so a file name can neither start a heading nor pull in a remote image.
 */
export function escapeMarkdown(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').replace(/[\\`*_{}\[\]()#+\-.!|<>~:&"']/g, (c) => `\\${c}`);
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const num = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3));

const COLORS = LEVEL_COLORS;

/** Score histograms of the scan and the ID holdout as an SVG, with the threshold marked. */
export function histogramSvg(h: Histogram, width = 640, height = 220, title = 'score distribution'): string {
  const padL = 44;
  const padB = 30;
  const padT = 12;
  const w = width - padL - 10;
  const ht = height - padB - padT;
  const bins = h.scan.length;
  const max = niceCeil(Math.max(1e-9, ...h.scan, ...h.id));
  const lo = h.edges[0]!;
  const hi = h.edges[h.edges.length - 1]!;
  const x = (v: number): number => padL + ((v - lo) / (hi - lo || 1)) * w;
  const bw = w / bins;
  const bars = (vals: number[], color: string, opacity: number): string =>
    vals.map((v, i) => `<rect x="${(padL + i * bw).toFixed(1)}" y="${(padT + ht - (v / max) * ht).toFixed(1)}" width="${Math.max(0.5, bw - 1).toFixed(1)}" height="${((v / max) * ht).toFixed(1)}" fill="${color}" fill-opacity="${opacity}"/>`).join('');
  const tx = x(h.threshold);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => xTick(x(lo + f * (hi - lo)), height - 10, num(lo + f * (hi - lo)), f === 0 ? 'first' : f === 1 ? 'last' : 'middle'));
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" class="plot">` +
    `<title>${escapeHtml(title)}</title>` +
    yAxisSvg(max, { left: padL, top: padT, width: w, height: ht }, 'images') +
    `<line x1="${padL}" y1="${padT + ht}" x2="${padL + w}" y2="${padT + ht}" stroke="#98a2b3"/>` +
    bars(h.id, '#2e90fa', 0.55) +
    bars(h.scan, '#f04438', 0.55) +
    `<line x1="${tx.toFixed(1)}" y1="${padT}" x2="${tx.toFixed(1)}" y2="${padT + ht}" stroke="#101828" stroke-dasharray="4 3" stroke-width="1.5"/>` +
    `<text x="${(tx + 4).toFixed(1)}" y="${padT + 10}" font-size="11" fill="#101828">threshold</text>` +
    ticks.join('') +
    `<g font-size="11"><rect x="${padL + w - 150}" y="${padT}" width="10" height="10" fill="#2e90fa" fill-opacity="0.55"/><text x="${padL + w - 136}" y="${padT + 9}">ID holdout</text>` +
    `<rect x="${padL + w - 70}" y="${padT}" width="10" height="10" fill="#f04438" fill-opacity="0.55"/><text x="${padL + w - 56}" y="${padT + 9}">this scan</text></g>` +
    `</svg>`
  );
}

/** ROC curves (eval with labelled sets) as an SVG. */
export function rocSvg(curves: readonly { name: string; fpr: number[]; tpr: number[] }[], size = 260): string {
  const pad = 30;
  const s = size - 2 * pad;
  const colors = ['#f04438', '#2e90fa', '#12b76a', '#f79009', '#7a5af8', '#ee46bc'];
  const paths = curves.map((c, i) => {
    const d = c.fpr.map((f, j) => `${j === 0 ? 'M' : 'L'}${(pad + f * s).toFixed(1)},${(pad + (1 - c.tpr[j]!) * s).toFixed(1)}`).join('');
    return `<path d="${d}" fill="none" stroke="${colors[i % colors.length]}" stroke-width="1.5"/><text x="${pad + s - 4}" y="${pad + s - 6 - 13 * i}" font-size="11" text-anchor="end" fill="${colors[i % colors.length]}">${escapeHtml(c.name)}</text>`;
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="ROC curves" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}" class="plot"><title>ROC curves</title>` +
    `<rect x="${pad}" y="${pad}" width="${s}" height="${s}" fill="none" stroke="#98a2b3"/><line x1="${pad}" y1="${pad + s}" x2="${pad + s}" y2="${pad}" stroke="#d0d5dd" stroke-dasharray="3 3"/>` +
    paths.join('') +
    `<text x="${pad + s / 2}" y="${size - 6}" font-size="11" text-anchor="middle">false positive rate</text><text x="10" y="${pad + s / 2}" font-size="11" transform="rotate(-90 10 ${pad + s / 2})" text-anchor="middle">true positive rate</text></svg>`
  );
}

function badge(v: Pick<Verdict, 'level'>): string {
  return `<span class="badge" style="background:${COLORS[v.level]}">${escapeHtml(v.level)}</span>`;
}

/** A small plot of one property's distribution in the scan (red) against the ID holdout (blue); the outer bars are under- and overflow. */
export function propertySvg(p: PropertyDrift, width = 200, height = 70): string {
  const h = p.histogram;
  if (h === undefined) return '';
  const slots = h.scan.length;
  const max = Math.max(1e-9, ...h.scan, ...h.id);
  const pad = 14;
  const bw = width / slots;
  const ht = height - pad;
  const bars = (vals: number[], color: string): string =>
    vals.map((v, i) => `<rect x="${(i * bw).toFixed(1)}" y="${(ht - (v / max) * ht).toFixed(1)}" width="${Math.max(0.5, bw - 0.5).toFixed(1)}" height="${((v / max) * ht).toFixed(1)}" fill="${color}" fill-opacity="0.55"/>`).join('');
  const lo = h.edges[0]!;
  const hi = h.edges[h.edges.length - 1]!;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(p.name)} distribution" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" class="plot"><title>${escapeHtml(p.name)}: this scan (red) vs ID holdout (blue)</title>` +
    `<line x1="${bw}" y1="${ht}" x2="${width - bw}" y2="${ht}" stroke="#98a2b3"/>` +
    bars(h.id, '#2e90fa') +
    bars(h.scan, '#f04438') +
    `<text x="${bw}" y="${height - 2}" font-size="10" fill="#475467">${escapeHtml(num(lo))}</text><text x="${width - bw}" y="${height - 2}" font-size="10" text-anchor="end" fill="#475467">${escapeHtml(num(hi))}</text></svg>`
  );
}

function driftSection(r: ScanReport): string {
  const c = r.conditions;
  if (c === null) return '<section><h2>Imaging conditions: property drift</h2><p class="meta">Not measured: the model has no image-property statistics (fitted before them; refit it).</p></section>';
  const v: ConditionsVerdict = c.verdict;
  const rows = v.properties
    .map(
      (p) =>
        `<tr><td><b>${escapeHtml(p.name)}</b>${p.shifted ? ' ' + badge({ level: 'shifted' }) : ''}</td><td>${escapeHtml(p.text)}</td><td class="n">${p.emd.toFixed(2)} ± ${p.emdError.toFixed(2)}</td><td class="n">${p.ksD.toFixed(2)} (${escapeHtml(formatP(p.ksP))})</td><td>${propertySvg(p)}</td></tr>`,
    )
    .join('');
  const formats = (f: Record<string, number>): string => {
    const n = Object.values(f).reduce((a, b) => a + b, 0);
    return Object.entries(f).sort((a, b) => b[1] - a[1]).map(([k, m]) => `${escapeHtml(k)} ${pct(m / Math.max(1, n))}`).join(', ');
  };
  return `<section><h2>Imaging conditions: property drift</h2>
<p>${badge(v)} ${escapeHtml(v.text)}</p>
<p class="meta">Formats: ${formats(v.formats.scan)} (ID holdout: ${formats(v.formats.id)}). Conditions score threshold ${escapeHtml(num(c.threshold))}.</p>
<table><tr><th>property (worst first)</th><th>change against the ID set</th><th class="n">EMD (ID SDs)</th><th class="n">KS</th><th>this scan (red) vs ID (blue)</th></tr>${rows}</table>
<p class="meta">${escapeHtml(c.method)}.</p></section>`;
}

/** Where an image stands against the ID holdout: its rank, or how far above the holdout's maximum. */
function standing(e: ReportImage): string {
  if (e.aboveIdMaxSd !== null) return `above every ID score by ${e.aboveIdMaxSd >= 100 ? e.aboveIdMaxSd.toFixed(0) : e.aboveIdMaxSd.toFixed(1)} sd`;
  return e.rank >= 1 ? 'above every ID score' : `rank ${(e.rank * 100).toFixed(1)}%`;
}

/** A gallery of images, each linking to its object (file:// or s3://); score items never break inside. */
function gallery(title: string, items: readonly ReportImage[], thumbs: ReadonlyMap<string, string>, inputUri: string): string {
  const cells = items.map((e) => {
    const src = thumbs.get(e.key);
    const href = escapeHtml(locationHref(inputUri, e.key));
    const img = src !== undefined ? `<img src="${src}" alt="${escapeHtml(e.key)}" width="96" height="96">` : `<div class="noimg">no preview</div>`;
    const scores = Object.entries(e.scores).map(([t, v]) => `<span class="s">${escapeHtml(t)} ${escapeHtml(num(v))}</span>`).join(' · ');
    const line = [`<span class="s">${escapeHtml(standing(e))}</span>`, ...(e.flagged ? ['<span class="s">flagged</span>'] : [])].join(' · ');
    return `<figure class="thumb${e.flagged ? ' flagged' : ''}"><a href="${href}" title="${href}">${img}</a><figcaption><a class="key" href="${href}">${escapeHtml(e.key)}</a><br>${line}<br><small>${scores}</small></figcaption></figure>`;
  });
  return `<section><h2>${escapeHtml(title)}</h2><div class="gallery">${cells.join('')}</div></section>`;
}

/** What a trend point covers: the whole prefix (with its new or changed images), or, before whole-prefix reports, an incremental scan's own images. */
function imagesOf(r: Trend['runs'][number]): string {
  if (r.newOrChanged !== undefined) return `whole prefix (${r.newOrChanged.scored} new or changed, ${r.newOrChanged.level})`;
  return r.incremental ? 'new or changed only' : 'whole prefix';
}

/** The trend section: the chart and, folded, the scans as a table. */
function trendSection(t: Trend | null): string {
  if (t === null || t.runs.length === 0) return '';
  const rows = [...t.runs]
    .reverse()
    .map((r) => `<tr><td>${escapeHtml(r.finishedAt.slice(0, 16).replace('T', ' '))} UTC</td><td>${badgeOf(r.level)}</td><td class="n">${r.scored}</td><td class="n">${r.flagged}</td><td class="n">${pct(r.flaggedFraction)}</td><td>${imagesOf(r)}</td><td>${escapeHtml(r.partitions.filter((p) => p.level === 'shifted' || p.level === 'possibly shifted').map((p) => p.name).join(', '))}</td></tr>`)
    .join('');
  return (
    `<section><h2>Trend: the last ${t.runs.length} scans of this prefix</h2>${trendSvg(t)}` +
    `<p class="meta">Each point is one completed scan (its verdict's colour; it links to that scan's report): the whole prefix as of that scan (points of scans before whole-prefix reports marked "new or changed only" cover that scan's images alone). ` +
    `Squares on dashed lines: the worst partitions of scans that covered several. Verdicts: ${(['shifted', 'possibly shifted', 'no shift detected', 'too few images'] as const).map((l) => `<span class="dot" style="background:${COLORS[l]}"></span>${l}`).join(' ')}.</p>` +
    `<details><summary>the scans as a table</summary><table><tr><th>finished</th><th>verdict</th><th class="n">scored</th><th class="n">flagged</th><th class="n">flagged %</th><th>covers</th><th>shifted partitions</th></tr>${rows}</table></details></section>`
  );
}

/** The failures section: counts by reason, the first examples, and a link to the full list. */
function failuresSection(r: ScanReport, href: string): string {
  if (r.failures.count === 0) return '<p>No image failed.</p>';
  const link = `<a href="${escapeHtml(href)}">${escapeHtml(href)}</a>`;
  return (
    `<table><tr><th>reason</th><th class="n">images</th></tr>${r.failures.byReason.map((f) => `<tr><td>${escapeHtml(f.reason)}</td><td class="n">${f.count}</td></tr>`).join('')}</table>` +
    `<p class="meta">Every failed image with its reason: ${link}.</p>` +
    `<details><summary>first ${r.failures.examples.length} failed images</summary><ul>${r.failures.examples.map((f) => `<li><code>${escapeHtml(f.key)}</code>: ${escapeHtml(f.reason)}</li>`).join('')}</ul></details>`
  );
}

function badgeOf(level: Verdict['level'], few = false): string {
  return `<span class="badge" style="background:${COLORS[level]}">${escapeHtml(level)}</span>${few ? ' <small>few images</small>' : ''}`;
}

export interface HtmlExtras {
  readonly roc?: string;
  /** The full failure list, relative to the report: failures.csv, or the failures/ folder of large runs. */
  readonly failures?: string;
}

const PARTITION_HEADER = '<tr><th>partition</th><th>semantic</th><th>conditions</th><th class="n">scored</th><th class="n">flagged</th><th class="n">flagged %</th><th class="n">binomial</th><th class="n">AUC</th><th class="n">KS</th></tr>';

/** The partitions table's rows, worst first. */
function partitionRows(list: ScanReport['partitions']['list']): string {
  return list
    .map(
      (p) =>
        `<tr><td>${escapeHtml(p.name)}</td><td>${badgeOf(p.level, p.fewImages)}</td><td>${p.conditions !== null ? `${badge(p.conditions)}${p.conditions.shiftedProperties.length > 0 ? ` <small>${escapeHtml(p.conditions.shiftedProperties.join(', '))}</small>` : ''}` : '<small>n/a</small>'}</td><td class="n">${p.scored}</td><td class="n">${p.flagged}</td><td class="n">${pct(p.flaggedFraction)}</td><td class="n">${escapeHtml(formatP(p.binomialP))}</td><td class="n">${p.auc.toFixed(2)}</td><td class="n">${p.ksD.toFixed(2)} (${escapeHtml(formatP(p.ksP))})</td></tr>`,
    )
    .join('');
}

/**
 * The section of the images new or changed since the previous scan, with their own verdict; on a
 * scan that scanned every image, one line saying why (the whole prefix above is then what it found).
 */
function newOrChangedSection(r: ScanReport, thumbs: ReadonlyMap<string, string>): string {
  const n = r.newOrChanged;
  if (n === null) {
    if (!r.scope.wholePrefix) return '';
    return `<section class="new"><h2>New or changed since the last scan</h2><p class="meta">Every image of the prefix was scanned by this run${r.scope.rescan !== null ? ` (${escapeHtml(r.scope.rescan)})` : ''}: the report above is what it found, with no separate section.</p></section>`;
  }
  const body =
    n.scored + n.failed === 0
      ? '<p>No image is new or changed since the last scan.</p>'
      : `<div class="verdict small" style="background:${COLORS[n.headline.level]}">${escapeHtml(n.headline.text)}</div>` +
        `<p class="meta">${n.scored} scored, ${n.failed} failed${n.since !== null ? `, since ${escapeHtml(n.since)}` : ''}; failed images are retried by every scan, so they count here each time.</p>` +
        `<table>${PARTITION_HEADER}${partitionRows(n.partitions)}</table>` +
        (n.mostOod.length > 0 ? gallery(`Most out-of-distribution new or changed images (top ${n.mostOod.length})`, n.mostOod, thumbs, r.input.uri) : '');
  return `<section class="new"><h2>New or changed since the last scan</h2>${body}</section>`;
}

export function renderHtml(r: ScanReport, thumbs: ReadonlyMap<string, string>, extra: HtmlExtras = {}): string {
  const v = r.verdict;
  const rows = partitionRows(r.partitions.list);
  const failures = failuresSection(r, extra.failures ?? 'failures.csv');
  const previous = r.previous === null ? '' : `<p class="prev">Compared with the previous scan of this prefix: ${escapeHtml(r.previous.change)}.</p>`;
  const missing = r.input.missingShards.length > 0 ? `<p class="warn">Shards not scored (their images are listed as failures): ${r.input.missingShards.join(', ')}.</p>` : '';
  const incremental = r.run.incremental ? `<li>incremental scan: ${r.run.skippedUnchanged} unchanged images since the previous scan were not rescanned</li>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ood-audit report: ${escapeHtml(r.input.uri)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#101828;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #eaecf0;padding-bottom:4px}
.verdict{font-size:20px;padding:14px 16px;border-radius:8px;color:#fff;margin:12px 0}.verdict.small{font-size:15px;padding:8px 12px}.scope{font-size:14px}.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-end}
.badge{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;white-space:nowrap}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #eaecf0;padding:4px 10px;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}
.gallery{display:flex;flex-wrap:wrap;gap:10px}.thumb{width:170px;margin:0;font-size:11px;overflow-wrap:anywhere}.thumb .s{white-space:nowrap}.thumb a{color:inherit}.thumb img{border:3px solid #eaecf0;border-radius:4px;image-rendering:pixelated}
.thumb.flagged img{border-color:#f04438}.noimg{width:96px;height:96px;background:#f2f4f7;display:flex;align-items:center;justify-content:center;color:#667085}
.meta{color:#475467;font-size:13px}.dot{display:inline-block;width:9px;height:9px;border-radius:5px;margin:0 3px 0 8px}.warn{color:#b54708}.prev{font-size:14px}code{font-size:12px}
</style></head><body>
<h1>Distribution-shift audit</h1>
<div class="meta">${escapeHtml(r.input.uri)} · run ${escapeHtml(r.run.id)} · ${escapeHtml(r.run.finishedAt)}</div>
<div class="verdict" style="background:${COLORS[r.headline.level]}">${escapeHtml(r.headline.text)}</div>
<p><b>${escapeHtml(r.verdicts.text)}</b></p>
<p class="scope">This report describes ${escapeHtml(r.scope.text)}.</p>
${previous}${missing}
<section><h2>Run</h2><ul class="meta">
<li>model ${escapeHtml(r.model.uri)} (encoder ${escapeHtml(r.model.encoder)}, trained on ${r.model.idImages} ID images${r.model.idSource !== null ? ` from ${escapeHtml(r.model.idSource)}` : ''}); primary score <b>${escapeHtml(r.model.primary)}</b>, threshold ${escapeHtml(num(r.model.threshold))} keeps ${pct(r.model.tpr)} of ID images</li>
<li>${r.input.images} images scanned, ${r.input.scored} scored, ${r.input.failed} failed, ${r.input.skippedNonImages} non-image files skipped</li>
<li>every listed entry accounted for: ${escapeHtml(formatAccounting(r.input.accounting))}; see failures.csv and skipped.csv</li>${incremental}
<li>${r.run.seconds.toFixed(0)} s, ${r.run.imagesPerSecond.toFixed(1)} images/s, backend ${escapeHtml(r.run.backend)}${r.run.encoderRuntimes.length > 0 ? `, encoder ${escapeHtml(r.run.encoderRuntimes.join('; '))}` : ''}</li></ul></section>
<section><h2>Where: partitions by severity</h2>
<table>${PARTITION_HEADER}${rows}</table>
<p class="meta">Expected flagged fraction for in-distribution data: ${pct(v.expectedFraction)}. AUC: probability that an image of the partition scores above an ID holdout image (0.5 = no shift).</p></section>
${newOrChangedSection(r, thumbs)}
${trendSection(r.trend)}
<section><h2>Scores against the ID calibration set</h2><div class="plots">${histogramSvg(r.histogram, 600, 220, `${r.model.primary} histogram`)}${rankHistogramSvg(r.rankHistogram)}</div>${extra.roc ?? ''}
<p class="meta">Left: the ${escapeHtml(r.model.primary)} score (fraction of images per bin). Right: the same images by their rank among the ID holdout's scores, where the holdout is flat and images above every holdout score have a bar of their own: far-OOD images cannot squeeze the ID mass there. ${r.model.holdout.std !== null ? `Holdout: ${r.model.holdout.n} images, maximum ${escapeHtml(num(r.model.holdout.max))}, sd ${escapeHtml(num(r.model.holdout.std))}.` : ''}</p></section>
${driftSection(r)}
${gallery(`Most out-of-distribution images (top ${r.mostOod.length})`, r.mostOod, thumbs, r.input.uri)}
${gallery(`Most typical images (${r.mostTypical.length})`, r.mostTypical, thumbs, r.input.uri)}
<section><h2>Failures</h2>${failures}</section>
<p class="meta">ood-audit report schema ${escapeHtml(r.schema)}; machine-readable copy: <a href="report.json">report.json</a>; per-image scores: <a href="scores/">scores/</a> (and scores.parquet / scores.csv for runs of at most 100,000 images).</p>
</body></html>
`;
}

/** report.md's partitions: a table, or a plain list for chat tools that do not render tables. */
export type MdStyle = 'table' | 'list';

/** Partitions listed one by one in report.md (the rest, the least shifted, are counted by level). */
export const MD_PARTITIONS = 30;

/** Every partition with its level, worst first: a table or a list (at most MD_PARTITIONS lines, the rest counted). */
function markdownPartitions(r: ScanReport, style: MdStyle): string[] {
  const list = r.partitions.list;
  if (list.length === 0) return [];
  const shown = list.slice(0, MD_PARTITIONS);
  const flagged = (p: (typeof list)[number]): string => `${pct(p.flaggedFraction)} of ${p.scored}${p.fewImages ? ' (few images)' : ''}`;
  const lines =
    style === 'table'
      ? ['| partition | verdict | flagged |', '|---|---|---|', ...shown.map((p) => `| ${escapeMarkdown(p.name)} | ${p.level} | ${flagged(p)} |`)]
      : [`Partitions (${list.length}, worst first):`, ...shown.map((p) => `- ${escapeMarkdown(p.name)}: ${p.level}, ${flagged(p)} flagged`)];
  const rest = list.slice(MD_PARTITIONS);
  if (rest.length > 0) {
    const byLevel = new Map<string, number>();
    for (const p of rest) byLevel.set(p.level, (byLevel.get(p.level) ?? 0) + 1);
    lines.push(`${style === 'list' ? '- ' : ''}and ${rest.length} more: ${[...byLevel].map(([l, n]) => `${n} ${l}`).join(', ')}`);
  }
  return lines;
}

/** The last scans' flagged fractions on one line (the newest last). */
function markdownTrend(t: Trend | null): string | undefined {
  if (t === null || t.runs.length < 2) return undefined;
  const last = t.runs.slice(-8);
  return `Trend (last ${last.length} of ${t.runs.length} scans, flagged): ${last.map((r) => `${pct(r.flaggedFraction)}${r.level === 'shifted' || r.level === 'possibly shifted' ? ` ${r.level}` : ''}`).join(' → ')}`;
}

/** A headline in Markdown: the verdict's own words, partition names from the data escaped. */
function markdownHeadline(h: ScanReport['headline'], v: Verdict, list: ScanReport['partitions']['list']): string {
  if (h.partitions.length === 0) return v.text;
  const worse = list.filter((p) => h.partitions.includes(p.name));
  const named = worse.map((p) => `${escapeMarkdown(p.name)} (${p.flagged} of ${p.scored} flagged${p.fewImages ? ', few images' : ''})`).join(', ');
  return `${h.partitions.length === 1 ? 'partition' : 'partitions'} ${h.level}: ${named}; whole scan: ${v.text}`;
}

export function renderMarkdown(r: ScanReport, options: { readonly style?: MdStyle } = {}): string {
  const h = r.headline;
  const lines = [
    `**ood-audit** ${escapeMarkdown(r.input.uri)} (${r.run.finishedAt.slice(0, 16).replace('T', ' ')} UTC)`,
    `**${h.level.toUpperCase()}**: ${markdownHeadline(h, r.verdict, r.partitions.list)}`,
    r.verdicts.text,
    `${escapeMarkdown(formatAccounting(r.input.accounting))}; model ${escapeMarkdown(r.model.uri)} (${r.model.primary})`,
  ];
  if (r.scope.wholePrefix) lines.push(`Scope: ${escapeMarkdown(r.scope.text)}`);
  const n = r.newOrChanged;
  if (n !== null) lines.push(n.scored + n.failed === 0 ? 'New or changed since the last scan: none' : `New or changed since the last scan: **${n.headline.level.toUpperCase()}**: ${markdownHeadline(n.headline, n.verdict, n.partitions)}`);
  if (r.previous !== null) lines.push(`Previous scan: ${r.previous.change}`);
  const trend = markdownTrend(r.trend);
  if (trend !== undefined) lines.push(trend);
  const parts = markdownPartitions(r, options.style ?? 'table');
  if (parts.length > 0) lines.push('', ...parts);
  const drift = r.conditions?.verdict.properties.filter((p) => p.shifted).slice(0, 5) ?? [];
  if (drift.length > 0) lines.push('', 'Imaging conditions against the ID set:', ...drift.map((p) => `- ${p.name}: ${p.text}`));
  if (r.mostOod.length > 0) lines.push('', `Most OOD: ${r.mostOod.slice(0, 5).map((e) => escapeMarkdown(e.key)).join(', ')}`);
  return lines.join('\n') + '\n';
}

/** The eval protocol's results as a self-contained page: metric table and ROC curves. */
export function renderEvalHtml(report: { results: readonly { ood: string; score: string; auroc: number; fpr95: number; aupr_in: number; aupr_out: number }[]; sets: Readonly<Record<string, { count: number; failed: number }>> }, modelUri: string, primary: string, roc: string): string {
  const rows = report.results
    .map((r) => `<tr${r.score === primary ? ' class="primary"' : ''}><td>${escapeHtml(r.ood)}</td><td>${escapeHtml(r.score)}</td><td class="n">${(r.auroc * 100).toFixed(2)}</td><td class="n">${(r.fpr95 * 100).toFixed(2)}</td><td class="n">${(r.aupr_in * 100).toFixed(2)}</td><td class="n">${(r.aupr_out * 100).toFixed(2)}</td></tr>`)
    .join('');
  const sets = Object.entries(report.sets).map(([n, s]) => `${escapeHtml(n)}: ${s.count}${s.failed > 0 ? ` (+${s.failed} failed)` : ''}`).join(', ');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ood-audit eval: ${escapeHtml(modelUri)}</title>
<style>body{font-family:system-ui,Arial,sans-serif;margin:24px auto;max-width:900px;color:#101828}table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #eaecf0;padding:4px 10px;text-align:left}.n{text-align:right}.primary{font-weight:600}</style></head><body>
<h1>OOD evaluation</h1><p>model ${escapeHtml(modelUri)}; sets ${sets}</p>
<table><tr><th>OOD set</th><th>score</th><th class="n">AUROC %</th><th class="n">FPR95 %</th><th class="n">AUPR-in %</th><th class="n">AUPR-out %</th></tr>${rows}</table>
<h2>ROC curves (${escapeHtml(primary)})</h2>${roc}</body></html>
`;
}
