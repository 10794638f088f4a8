// Charts drawn by ora itself as SVG: no library, no inline style, every label set as text.
import { element } from './format.js';

const svgNamespace = 'http://www.w3.org/2000/svg';

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(svgNamespace, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Bars per day for two series, side by side: `days` is [{day, sessions, denials}]. The chart names itself for
 * screen readers and lists its numbers in a table below it.
 */
export function dailyBars(days, title) {
  const width = 640;
  const height = 180;
  const bottom = 24;
  const left = 32;
  const above = 12;
  const plot = height - bottom - above;
  const top = Math.max(1, ...days.flatMap((day) => [day.sessions, day.denials]));
  const slot = days.length ? (width - left) / days.length : width - left;
  const bar = Math.max(2, Math.min(18, slot / 2 - 2));
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title });
  chart.append(svg('title', {}, title));
  // Whole numbers on the axis: 0, the middle when there is one, the top.
  const ticks = top >= 2 ? [0, Math.round(top / 2), top] : [0, top];
  for (const tick of ticks) {
    const y = above + plot * (1 - tick / top) + 0.5;
    chart.append(svg('line', { x1: left, x2: width, y1: y, y2: y, class: 'grid' }));
    chart.append(svg('text', { x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, String(tick)));
  }
  days.forEach((day, index) => {
    const x = left + index * slot + slot / 2;
    const scale = (value) => plot * (value / top);
    chart.append(svg('rect', { x: x - bar - 1, y: height - bottom - scale(day.sessions), width: bar,
      height: scale(day.sessions), class: 'sessions' }));
    chart.append(svg('rect', { x: x + 1, y: height - bottom - scale(day.denials), width: bar,
      height: scale(day.denials), class: 'denials' }));
    if (days.length <= 14 || index % Math.ceil(days.length / 14) === 0) {
      chart.append(svg('text', { x, y: height - 6, class: 'axis', 'text-anchor': 'middle' }, day.day.slice(5)));
    }
  });
  const table = element('table', { class: 'chart-numbers' },
    element('caption', { text: title }),
    element('thead', {}, element('tr', {}, element('th', { scope: 'col', text: 'Day' }),
      element('th', { scope: 'col', text: 'Sessions' }), element('th', { scope: 'col', text: 'Refused' }))),
    element('tbody', {}, ...days.map((day) => element('tr', {}, element('th', { scope: 'row', text: day.day }),
      element('td', { text: String(day.sessions) }), element('td', { text: String(day.denials) })))));
  return element('figure', { class: 'daily' }, chart,
    element('figcaption', {}, element('span', { class: 'key sessions', text: 'sessions offered' }),
      element('span', { class: 'key denials', text: 'offers refused' })),
    element('details', {}, element('summary', { text: 'The numbers' }), table));
}

/** A ranked list with bars: `counts` is [{name, count}]. */
export function ranking(title, counts) {
  const most = Math.max(1, ...counts.map((entry) => entry.count));
  return element('figure', { class: 'ranking' }, element('figcaption', { text: title }),
    counts.length === 0 ? element('p', { class: 'quiet', text: 'None in this time.' }) : element('ol', {},
      ...counts.map((entry) => {
        const meter = svg('svg', { viewBox: '0 0 100 8', class: 'meter', 'aria-hidden': 'true',
          preserveAspectRatio: 'none' });
        meter.append(svg('rect', { x: 0, y: 0, height: 8, width: Math.max(1, (100 * entry.count) / most) }));
        return element('li', {}, element('span', { class: 'name', text: entry.name }), meter,
          element('span', { class: 'count', text: String(entry.count) }));
      })));
}
