/** The process's own numbers for the stats registry: memory, CPU, uptime. */
export function processStats(): Record<string, number> {
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    cpuUserSeconds: Math.round(cpu.user / 1000) / 1000,
    cpuSystemSeconds: Math.round(cpu.system / 1000) / 1000,
    uptimeSeconds: Math.round(process.uptime()),
  };
}
