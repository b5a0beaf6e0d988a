// Human-readable sizes, dimensions, durations and pipeline summaries, in the current language's
// number and date formats (Intl). Unit symbols (B, KiB, ms, s, min, h) are the same in every language.

import { getLanguage, t } from './i18n.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB'];

/** A number in the current language ("1,234.5" / "1.234,5"); `digits` fixes the decimals shown. */
export function formatNumber(n, { digits, maxDigits } = {}) {
  const options = digits != null ? { minimumFractionDigits: digits, maximumFractionDigits: digits } : { maximumFractionDigits: maxDigits ?? 2 };
  return new Intl.NumberFormat(getLanguage(), options).format(n);
}

/** A fraction 0–1 as a percentage ("42%"). */
export function formatPercent(fraction) {
  return new Intl.NumberFormat(getLanguage(), { style: 'percent', maximumFractionDigits: 0 }).format(fraction);
}

export function formatBytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${formatNumber(value, { maxDigits: digits })} ${UNITS[unit]}`;
}

export function formatDims(info) {
  if (!info || !info.width || !info.height) return null;
  return `${info.width}×${info.height}`;
}

export function formatDuration(ms) {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${formatNumber(Math.round(ms))} ms`;
  if (ms < 60_000) return `${formatNumber(ms / 1000, { digits: ms < 10_000 ? 2 : 1 })} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${formatNumber(minutes)} min ${formatNumber(Math.round((ms % 60_000) / 1000))} s`;
}

/** Milliseconds between two RFC 3339 timestamps, or null. */
export function elapsed(from, to) {
  if (!from || !to) return null;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) ? ms : null;
}

export function formatTimestamp(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(getLanguage());
}

/** Hours and minutes of a timestamp ("14:05" / "2:05 PM"). */
export function formatClock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString(getLanguage(), { hour: '2-digit', minute: '2-digit' });
}

/**
 * "resize 200×auto contain · png q80" from the stored pipeline JSON; tolerant of unknown shapes.
 * Operation names and values stay the API's words (as in the detail view's JSON).
 */
export function summarizePipeline(pipeline) {
  if (!pipeline || typeof pipeline !== 'object') return t('pipeline.default');
  const parts = [];
  for (const step of Array.isArray(pipeline.steps) ? pipeline.steps : []) {
    if (!step || typeof step !== 'object') continue;
    if (step.op === 'resize') {
      parts.push(`resize ${step.width ?? t('pipeline.auto')}×${step.height ?? t('pipeline.auto')}${step.fit && step.fit !== 'contain' ? ` ${step.fit}` : ''}`);
    } else {
      const args = Object.entries(step)
        .filter(([key, value]) => key !== 'op' && value !== true)
        .map(([, value]) => String(value));
      parts.push([step.op, ...args].join(' '));
    }
  }
  if (pipeline.format) parts.push(String(pipeline.format));
  if (pipeline.quality != null) parts.push(`q${pipeline.quality}`);
  return parts.length ? parts.join(' · ') : t('pipeline.empty');
}
