/**
 * One boot drawn on a time axis: a lane per kind of step (DHCP, files, the
 * OS's DHCP, SSH, audit, smoke), files as bars from their first to their last
 * byte with size and rate, the rest as marks. SVG, no library.
 */
import type { BootRecord } from './api.js';
import { bytes, duration } from './format.js';

const LANES = ['dhcp', 'wait', 'file', 'os-dhcp', 'upload', 'ssh', 'audit', 'smoke'] as const;
const LANE_TEXT: Record<string, string> = { dhcp: 'DHCP', wait: 'image wait', file: 'files', 'os-dhcp': 'OS DHCP', upload: 'uploads', ssh: 'SSH', audit: 'audit', smoke: 'smoke' };
const LANE_H = 26;
const LEFT = 80;
const WIDTH = 1000;

export function Timeline({ boot }: { boot: BootRecord }) {
  const t0 = Date.parse(boot.startedAt);
  const items = boot.events.map((e) => {
    const end = Date.parse(e.at) - t0;
    const d = e.data ?? {};
    const dur = e.kind === 'file' && typeof d.durationMs === 'number' ? d.durationMs : 0;
    return { e, start: Math.max(0, end - dur), end, dur, bytes: typeof d.bytes === 'number' ? d.bytes : null };
  });
  const span = Math.max(1000, ...items.map((i) => i.end)) * 1.02;
  const lanes = LANES.filter((l) => items.some((i) => i.e.kind === l));
  const x = (ms: number): number => LEFT + (ms / span) * (WIDTH - LEFT - 50);
  const height = lanes.length * LANE_H + 30;
  const ticks = Array.from({ length: 6 }, (_, i) => (span / 5) * i);
  const files = items.filter((i) => i.e.kind === 'file' || i.e.kind === 'upload');
  return (
    <>
    <svg class="timeline" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={`timeline of boot ${boot.id}`}>
      {ticks.map((t) => (
        <g key={t}>
          <line x1={x(t)} x2={x(t)} y1={0} y2={height - 20} class="tick" />
          <text x={x(t)} y={height - 6} class="axis" text-anchor={t === 0 ? 'start' : 'middle'}>
            {duration(t)}
          </text>
        </g>
      ))}
      {lanes.map((l, li) => (
        <text key={l} x={4} y={li * LANE_H + 17} class="lane">
          {LANE_TEXT[l]}
        </text>
      ))}
      {items.map((i, k) => {
        const li = lanes.indexOf(i.e.kind as (typeof LANES)[number]);
        if (li < 0) return null;
        const y = li * LANE_H + 4;
        const rate = i.bytes !== null && i.dur > 0 ? ` ${bytes((i.bytes / i.dur) * 1000)}/s` : '';
        const title = `${i.e.text}${rate} at +${duration(i.end)}`;
        if (i.e.kind === 'file' && i.dur > 0) {
          return (
            <g key={k} class="bar">
              <rect x={x(i.start)} y={y} width={Math.max(2, x(i.end) - x(i.start))} height={LANE_H - 8} rx={2}>
                <title>{title}</title>
              </rect>
            </g>
          );
        }
        return (
          <g key={k} class={`mark k-${i.e.kind}${i.e.data?.ok === false ? ' bad' : ''}`}>
            <circle cx={x(i.end)} cy={y + (LANE_H - 8) / 2} r={5}>
              <title>{title}</title>
            </circle>
          </g>
        );
      })}
    </svg>
    {files.length > 0 && (
      <table class="files">
        <thead>
          <tr>
            <th>File</th>
            <th>Size</th>
            <th>Took</th>
            <th>Rate</th>
            <th>At</th>
          </tr>
        </thead>
        <tbody>
          {files.map((f, k) => (
            <tr key={k}>
              <td class="mono">{String(f.e.data?.file ?? f.e.text)}</td>
              <td>{f.bytes !== null ? bytes(f.bytes) : ''}</td>
              <td>{f.dur > 0 ? duration(f.dur) : ''}</td>
              <td>{f.bytes !== null && f.dur > 0 ? `${bytes((f.bytes / f.dur) * 1000)}/s` : ''}</td>
              <td>+{duration(f.end)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
    </>
  );
}
