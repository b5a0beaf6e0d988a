// Human-readable sizes, dimensions, durations and pipeline summaries.

const UNITS = ['B', 'KiB', 'MiB', 'GiB'];

export function formatBytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))} ${UNITS[unit]}`;
}

export function formatDims(info) {
  if (!info || !info.width || !info.height) return null;
  return `${info.width}×${info.height}`;
}

export function formatDuration(ms) {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
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
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** "resize 200×auto contain · png q80" from the stored pipeline JSON; tolerant of unknown shapes. */
export function summarizePipeline(pipeline) {
  if (!pipeline || typeof pipeline !== 'object') return 'default pipeline';
  const parts = [];
  for (const step of Array.isArray(pipeline.steps) ? pipeline.steps : []) {
    if (!step || typeof step !== 'object') continue;
    if (step.op === 'resize') {
      parts.push(`resize ${step.width ?? 'auto'}×${step.height ?? 'auto'}${step.fit && step.fit !== 'contain' ? ` ${step.fit}` : ''}`);
    } else {
      const args = Object.entries(step)
        .filter(([key, value]) => key !== 'op' && value !== true)
        .map(([, value]) => String(value));
      parts.push([step.op, ...args].join(' '));
    }
  }
  if (pipeline.format) parts.push(String(pipeline.format));
  if (pipeline.quality != null) parts.push(`q${pipeline.quality}`);
  return parts.length ? parts.join(' · ') : 'no operations';
}
