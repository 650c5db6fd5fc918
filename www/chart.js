// A small line chart of the hit rate over time: inline SVG, no library.
// The SVG stretches to its box (preserveAspectRatio="none"); strokes keep their width.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 100;

/** Draws the last `capacity` values (0-100) pushed into the chart inside `svg`. */
export function createChart(svg, capacity = 60) {
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("preserveAspectRatio", "none");
  for (const y of [0, 50, 100]) {
    svg.append(el("line", { x1: 0, x2: WIDTH, y1: toY(y), y2: toY(y), class: "grid" }));
  }
  const area = el("polygon", { class: "area" });
  const line = el("polyline", { class: "line" });
  svg.append(area, line);

  const values = [];
  return {
    push(value) {
      values.push(Math.max(0, Math.min(100, value)));
      if (values.length > capacity) values.shift();
      const step = WIDTH / (capacity - 1);
      const offset = WIDTH - (values.length - 1) * step; // newest point on the right edge
      const points = values.map((v, i) => `${(offset + i * step).toFixed(1)},${toY(v).toFixed(1)}`);
      line.setAttribute("points", points.join(" "));
      area.setAttribute("points", `${offset.toFixed(1)},${HEIGHT} ${points.join(" ")} ${WIDTH},${HEIGHT}`);
      svg.dataset.points = String(values.length);
    },
    /** Forgets every value (a new cache starts a new line). */
    reset() {
      values.length = 0;
      line.removeAttribute("points");
      area.removeAttribute("points");
      svg.dataset.points = "0";
    },
  };
}

function toY(percent) {
  return HEIGHT - (percent / 100) * (HEIGHT - 4) - 2; // 2 units of margin top and bottom
}

function el(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (name === "line" || name === "polyline") node.setAttribute("vector-effect", "non-scaling-stroke");
  return node;
}
