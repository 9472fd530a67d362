/** This process's peak resident set, in KiB (see peak-rss.mjs). */
export function peakRssKiB(): number;
