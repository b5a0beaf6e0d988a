// The dashboard strip: queue depth, the oldest wait, and the last hour's throughput as a small
// bar chart, from `/api/stats` (`history`: completed and failed per minute). It is redrawn
// whenever the counters are, which the event stream triggers, so it is live.

import { formatClock, formatNumber } from './format.js';
import { t } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

function formatWait(seconds) {
  const s = Math.round(Number(seconds) || 0);
  if (s < 1) return t('dash.waitNone');
  if (s < 120) return `${formatNumber(s)} s`;
  if (s < 7200) return `${formatNumber(Math.round(s / 60))} min`;
  return `${formatNumber(Math.round(s / 3600))} h`;
}

/** Redraws the strip from a `/api/stats` answer. */
export function renderDashboard(stats) {
  const history = Array.isArray(stats?.history) ? stats.history : [];
  const completed = history.map((m) => Number(m.completed) || 0);
  const failed = history.map((m) => Number(m.failed) || 0);
  const sum = (values) => values.reduce((a, b) => a + b, 0);
  $('dash-depth').textContent = stats?.queue_depth == null ? '–' : formatNumber(Number(stats.queue_depth));
  $('dash-oldest').textContent = formatWait(stats?.oldest_pending_seconds);
  $('dash-hour').textContent = formatNumber(sum(completed));
  $('dash-failed').textContent = formatNumber(sum(failed));

  const chart = $('dash-chart');
  const width = 300;
  const height = 48;
  const slot = width / Math.max(history.length, 1);
  const peak = Math.max(1, ...completed.map((c, i) => c + failed[i]));
  const bars = [];
  history.forEach((minute, i) => {
    const ok = (completed[i] / peak) * height;
    const bad = (failed[i] / peak) * height;
    const x = (i * slot + 0.5).toFixed(1);
    const w = Math.max(slot - 1, 1).toFixed(1);
    const title = t('dash.minute', { time: formatClock(minute.minute), completed: completed[i], failed: failed[i] });
    const group = svg('g', { class: 'chart__minute', 'data-completed': completed[i], 'data-failed': failed[i] });
    const tip = svg('title', {});
    tip.textContent = title;
    group.append(tip);
    group.append(svg('rect', { class: 'chart__completed', x, y: (height - ok).toFixed(1), width: w, height: ok.toFixed(1) }));
    if (bad > 0) group.append(svg('rect', { class: 'chart__failed', x, y: (height - ok - bad).toFixed(1), width: w, height: bad.toFixed(1) }));
    bars.push(group);
  });
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  chart.replaceChildren(...bars);
  chart.setAttribute('aria-label', t('dash.chartSummary', { completed: sum(completed), failed: sum(failed), peak }));
  // The label now holds numbers: a language switch redraws it through renderDashboard, not data-i18n-attr.
  chart.removeAttribute('data-i18n-attr');
}
