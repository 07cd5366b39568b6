/**
 * Agent answers are Markdown written by software we do not control. This
 * renders them with `marked` and sanitises the HTML with DOMPurify so that
 * nothing in an answer can run script or load remote content: images are
 * kept only when they come from this workspace's own files (or are inline
 * data), links open in a new tab without access to this page.
 */
import DOMPurify, { type WindowLike } from "dompurify";
import { Marked } from "marked";

const marked = new Marked({ gfm: true, breaks: true, async: false });

const FORBID_TAGS = [
  "style",
  "form",
  "input",
  "button",
  "textarea",
  "select",
  "iframe",
  "object",
  "embed",
  "video",
  "audio",
  "source",
  "picture",
  "link",
  "meta",
  "base",
  "svg",
  "math",
];
const FORBID_ATTR = [
  "style",
  "srcset",
  "background",
  "poster",
  "action",
  "formaction",
];

/** Image sources that load nothing from outside this server. */
export function isLocalImage(src: string): boolean {
  return (
    /^\/api\/workspaces\/[^/]+\/files\/[^/]+\/content$/.test(src) ||
    /^data:image\/(png|jpeg|gif|webp);/.test(src)
  );
}

export type Sanitise = (html: string) => string;

export function createSanitiser(window: WindowLike): Sanitise {
  const purify = DOMPurify(window);
  purify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
    if (
      node.tagName === "IMG" &&
      !isLocalImage(node.getAttribute("src") ?? "")
    ) {
      // An image without a source loads nothing; its alt text still shows.
      node.removeAttribute("src");
    }
  });
  return (html) =>
    purify.sanitize(html, {
      FORBID_TAGS,
      FORBID_ATTR,
      ALLOW_DATA_ATTR: false,
    });
}

let pageSanitiser: Sanitise | null = null;

function pageSanitise(html: string): string {
  pageSanitiser ??= createSanitiser(window);
  return pageSanitiser(html);
}

/** Renders Markdown into HTML that is safe to put into the page. */
export function renderMarkdown(
  text: string,
  sanitise: Sanitise = pageSanitise,
): string {
  return sanitise(marked.parse(text) as string);
}
