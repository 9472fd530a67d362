const fs = require("fs");
const p = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const self = new Map(); const byId = new Map();
for (const n of p.nodes) byId.set(n.id, n);
const dt = p.timeDeltas; const counts = new Map();
p.samples.forEach((id, i) => counts.set(id, (counts.get(id) || 0) + (dt[i] || 0)));
let total = 0;
for (const [id, t] of counts) { const n = byId.get(id); const cf = n.callFrame; const k = `${cf.functionName || "(anon)"} ${cf.url.split("/").slice(-2).join("/")}:${cf.lineNumber}`; self.set(k, (self.get(k) || 0) + t); total += t; }
[...self].sort((a, b) => b[1] - a[1]).slice(0, +(process.argv[3] || 25)).forEach(([k, t]) => console.log((100 * t / total).toFixed(1).padStart(5), k));
