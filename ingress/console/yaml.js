// A small YAML writer for showing a definition (block style; strings quoted
// JSON-style whenever a plain scalar could be read back as something else).
// Pasted YAML is parsed by the server (`workflows:create` takes YAML), not here.

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$.-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n|~)$/i;
const PLAIN_TEXT = /^[A-Za-z_$/][^:#\n\r\t]*$/;

function key(name) {
  return PLAIN_KEY.test(name) && !RESERVED.test(name) ? name : JSON.stringify(name);
}

function scalar(value, indent) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean" || typeof value === "number") return String(value);
  const text = String(value);
  if (text.includes("\n") && !text.includes("\r") && !/^\s/.test(text) && !/\n\n+$/.test(text)) {
    const pad = " ".repeat(indent + 2);
    const chomp = text.endsWith("\n") ? "|" : "|-";
    const body = text.replace(/\n$/, "");
    return `${chomp}\n${body
      .split("\n")
      .map((line) => (line ? pad + line : ""))
      .join("\n")}`;
  }
  const plain =
    PLAIN_TEXT.test(text) && !RESERVED.test(text) && text.trim() === text && !/[{}[\],&*!|>'"%@`]/.test(text);
  return plain ? text : JSON.stringify(text);
}

function isEmpty(value) {
  return Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
}

function block(value, indent) {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    return value
      .map((item) => {
        if (item !== null && typeof item === "object" && !isEmpty(item)) {
          return `${pad}- ${block(item, indent + 2).slice(indent + 2)}`;
        }
        return `${pad}- ${inline(item, indent + 2)}`;
      })
      .join("\n");
  }
  return Object.entries(value)
    .map(([name, item]) => {
      if (item !== null && typeof item === "object" && !isEmpty(item)) {
        return `${pad}${key(name)}:\n${block(item, indent + 2)}`;
      }
      return `${pad}${key(name)}: ${inline(item, indent)}`;
    })
    .join("\n");
}

function inline(value, indent) {
  if (Array.isArray(value)) return "[]";
  if (value !== null && typeof value === "object") return "{}";
  return scalar(value, indent);
}

export function toYaml(value) {
  if (value !== null && typeof value === "object" && !isEmpty(value)) return `${block(value, 0)}\n`;
  return `${inline(value, 0)}\n`;
}
