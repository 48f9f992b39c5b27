// The API's documentation, drawn from /openapi.json (no external viewer, nothing fetched from elsewhere).
"use strict";

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function resolve(spec, schema) {
  while (schema && schema.$ref) schema = schema.$ref.split("/").slice(1).reduce((o, k) => o[k], spec);
  return schema || {};
}

function typeOf(spec, s) {
  s = resolve(spec, s);
  if (s.anyOf) return s.anyOf.map((x) => typeOf(spec, x)).join(" | ");
  if (s.type === "array") return `${typeOf(spec, s.items)}[]`;
  if (s.title && s.properties) return s.title;
  let t = s.type || (s.format === "binary" ? "file" : "any");
  if (s.format === "binary") t = "file";
  const lim = [];
  if (s.minimum !== undefined) lim.push(`>= ${s.minimum}`);
  if (s.maximum !== undefined) lim.push(`<= ${s.maximum}`);
  if (s.default !== undefined) lim.push(`default ${JSON.stringify(s.default)}`);
  return lim.length ? `${t} (${lim.join(", ")})` : t;
}

function paramTable(rows) {
  const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"),
    el("th", {}, "type"), el("th", {}, "description"))));
  const b = el("tbody");
  rows.forEach((r) => b.append(el("tr", {}, el("td", {}, el("code", {}, r.name + (r.required ? " *" : ""))),
    el("td", {}, r.where), el("td", {}, r.type), el("td", {}, r.desc || ""))));
  t.append(b);
  return t;
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  document.title = `${spec.info.title} ${spec.info.version} API`;
  document.getElementById("desc").textContent = spec.info.description || "";
  const ops = document.getElementById("ops");
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const sec = el("section", { class: "op" });
      sec.append(el("h2", {}, el("span", { class: `method ${method}` }, method.toUpperCase()),
        el("span", { class: "path" }, path)));
      if (op.summary) sec.append(el("p", {}, op.summary));
      const rows = (op.parameters || []).map((p) => ({ name: p.name, where: p.in, required: p.required,
        type: typeOf(spec, p.schema), desc: p.description || resolve(spec, p.schema).description }));
      const body = op.requestBody && Object.entries(op.requestBody.content || {})[0];
      if (body) {
        const s = resolve(spec, body[1].schema);
        for (const [name, prop] of Object.entries(s.properties || {})) {
          rows.push({ name, where: `body (${body[0]})`, required: (s.required || []).includes(name),
            type: typeOf(spec, prop), desc: resolve(spec, prop).description });
        }
      }
      if (rows.length) sec.append(paramTable(rows));
      const resp = el("ul");
      for (const [code, r] of Object.entries(op.responses || {})) resp.append(el("li", {}, el("code", {}, code), " ", r.description || ""));
      sec.append(el("p", { class: "muted" }, "responses:"), resp);
      ops.append(sec);
    }
  }
}
main().catch((e) => { document.getElementById("ops").textContent = `Cannot read /openapi.json: ${e}`; });
