/** `stage  seconds` per stage of a job, from its history's stage-started / stage-finished times. */
export function stageTimes(events: { time: string; event: string; stage?: string }[]): string {
  const ms = (t: string) => Date.parse(t.endsWith('Z') ? t : `${t}Z`);
  const lines: string[] = [];
  for (const start of events.filter((e) => e.event === 'stage-started')) {
    const end = events.find((e) => e.event === 'stage-finished' && e.stage === start.stage && ms(e.time) >= ms(start.time));
    lines.push(`  ${start.stage!.padEnd(10)} ${end ? ((ms(end.time) - ms(start.time)) / 1000).toFixed(1).padStart(7) : '      -'} s`);
  }
  return lines.join('\n');
}
