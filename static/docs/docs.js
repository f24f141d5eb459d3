// Renders the OpenAPI document as a readable page. Text from the document is
// always inserted as text, never as HTML.
const element = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
};

const resolve = (document, schema) => {
  if (schema && schema.$ref) return resolve(document, schema.$ref.split('/').slice(1).reduce((at, key) => at[key], document));
  return schema;
};

const example = (document, schema, depth = 0) => {
  schema = resolve(document, schema);
  if (!schema || depth > 4) return null;
  if (schema.oneOf || schema.anyOf) return example(document, (schema.oneOf || schema.anyOf).find((s) => s.type !== 'null') || {}, depth + 1);
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s) => example(document, s, depth + 1)));
  if (schema.enum) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': return Object.fromEntries(Object.entries(schema.properties || {}).map(([key, value]) => [key, example(document, value, depth + 1)]));
    case 'array': return [example(document, schema.items, depth + 1)];
    case 'integer': case 'number': return 0;
    case 'boolean': return false;
    case 'string': return schema.format === 'uuid' ? '00000000-0000-0000-0000-000000000000' : schema.format === 'date-time' ? '2026-01-01T00:00:00Z' : 'string';
    default: return null;
  }
};

const operation = (document, path, method, op) => {
  const body = element('div', { class: 'body' });
  if (op.description) body.append(element('p', {}, op.description));
  if (op.parameters?.length) {
    const table = element('table', {}, element('tr', {}, element('th', {}, 'Parameter'), element('th', {}, 'In'), element('th', {}, 'About')));
    for (const parameter of op.parameters) table.append(element('tr', {}, element('td', {}, element('code', {}, parameter.name)), element('td', {}, parameter.in), element('td', {}, parameter.description || '')));
    body.append(table);
  }
  const request = op.requestBody?.content;
  if (request) {
    const [type, media] = Object.entries(request)[0];
    body.append(element('p', {}, `Body (${type}):`), element('pre', {}, JSON.stringify(example(document, media.schema), null, 2)));
  }
  const responses = element('table', {}, element('tr', {}, element('th', {}, 'Status'), element('th', {}, 'Response')));
  for (const [status, response] of Object.entries(op.responses || {})) {
    const schema = response.content && Object.values(response.content)[0]?.schema;
    const shown = schema ? element('pre', {}, JSON.stringify(example(document, schema), null, 2)) : (response.description || '');
    responses.append(element('tr', {}, element('td', {}, status), element('td', {}, shown)));
  }
  body.append(responses);
  const summary = element('summary', {}, element('span', { class: `method ${method}` }, method.toUpperCase()), element('span', { class: 'path' }, path), element('span', { class: 'about' }, op.summary || ''));
  return element('details', {}, summary, body);
};

const render = (document) => {
  const byTag = new Map();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(document, path, method, op));
    }
  }
  const main = window.document.getElementById('operations');
  const nav = window.document.getElementById('tags');
  for (const [tag, operations] of byTag) {
    nav.append(element('a', { href: `#${tag}` }, tag));
    main.append(element('h2', { id: tag }, tag), ...operations);
  }
  const count = [...byTag.values()].reduce((total, list) => total + list.length, 0);
  window.document.getElementById('summary').textContent = `${document.info.title} ${document.info.version}: ${count} operations.`;
};

fetch('/api/openapi.json').then((response) => response.json()).then(render).catch((error) => {
  window.document.getElementById('summary').textContent = `The API document could not be loaded: ${error}`;
});
