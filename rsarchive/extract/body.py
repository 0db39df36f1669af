"""An article body: chrome out (by class and by what it is), embeds kept as links, images out.

RebelMouse editors paste chrome into ``.body-description`` that no class names: an ad slot
(``ins.adsbygoogle``) under a bare "ADVERTISEMENT" label, "ALSO READ: <link>" promo paragraphs,
newsletter sign-ups. Pages saved by a browser after its scripts ran add rendered embeds (a tweet's
``blockquote`` followed by its ``iframe``) and lazy images whose real URL is in ``data-src`` /
``data-runner-src`` / ``srcset``. What is chrome is decided here, in one place.
"""

from __future__ import annotations

import copy
import re
from urllib.parse import parse_qs, urljoin, urlsplit

from lxml import etree
from lxml.html import HtmlElement

from rsarchive.extract.text import block_text, inline_text, normalize_space, remove, sanitize_html
from rsarchive.extract.xpath import X
from rsarchive.extract.xpath import has_class as _cls
from rsarchive.items import Image
from rsarchive.urls import join_url, same_site

# Chrome by class or tag: ad units, share panels, toggles, scripts.
CHROME_CLASSES = frozenset(
    {"proper-ad-unit", "rs_ad_block", "ad-tag", "newsletter", "share-panel", "social-share"}
    | {"share-buttons", "widget__shares", "widget__show-more", "js-keep-reading", "adsbygoogle"}
)
CHROME_TAGS = frozenset({"script", "style", "noscript", "template", "form"})
# Attributes only an ad slot carries (AdSense, Google Publisher Tag).
AD_ATTRIBUTES = frozenset({"data-ad-client", "data-ad-slot", "data-google-query-id"})
# Chrome by what it says: a bare ad label, a promo lead-in, a newsletter pitch.
AD_LABEL = re.compile(
    r"^(?:advertisement|advertising|ad|sponsored(?: content)?|"
    r"(?:story|article) continues below(?: this)? (?:advertisement|ad))$",
    re.I,
)
PROMO_LEAD = re.compile(
    r"^(?:also read|read also|related|related stories|related articles?|read more|"
    r"more from (?:rs|responsible statecraft)|see also|recommended)\s*[:\-–—|]?\s*",
    re.I,
)
NEWSLETTER = re.compile(
    r"\b(?:sign up|subscribe)\b.{0,80}\bnewsletters?\b"
    r"|\bnewsletters?\b.{0,60}\b(?:sign up|subscribe)\b",
    re.I | re.S,
)
NEWSLETTER_WORD = re.compile("newsletter", re.I)
_SHORT = 40  # words: a promo or a sign-up is a line, not a paragraph of argument
_LEAF_BLOCKS = frozenset({"p", "div", "aside", "section", "h3", "h4", "h5", "h6"})
_BLOCK_CHILDREN = _LEAF_BLOCKS | {"ul", "ol", "blockquote", "figure", "table", "h2", "article"}

# Embeds as a browser leaves them: a tweet's blockquote, then the iframe widgets.js rendered.
TWEET = X(f".//blockquote[{_cls('twitter-tweet')} or {_cls('x-post')}]")
RENDERED_TWEET = X(
    f".//*[{_cls('twitter-tweet-rendered')} or {_cls('twitter-tweet')}][not(self::blockquote)]"
    "[not(.//blockquote)]"
)
EMBED_FRAMES = X(".//iframe")
TWEET_ID = re.compile(r"^\d{5,25}$")

INLINE_IMAGES = X(f".//img[{_cls('rm-shortcode')} or not(ancestor::*[{_cls('rm-shortcode')}])]")
LINKS = X(".//a[@href] | .//img[@src]")
IMAGE_HOLDER = X(f"ancestor::*[{_cls('shortcode-media-rebelmouse-image')} or self::figure][1]")
IMAGE_CAPTION = X(f".//*[{_cls('media-caption')} or {_cls('photo-caption')} or self::figcaption]")
IMAGE_CREDIT = X(f".//*[{_cls('media-photo-credit')} or {_cls('photo-credit')}]")

# Where a lazy image keeps its real URL, first that holds one wins; ``srcset`` last (the widest).
IMAGE_ATTRS = (
    "data-runner-img-hd",
    "data-runner-src",
    "data-runner-img-md",
    "data-runner-img-sd",
    "data-src",
    "data-lazy-src",
    "src",
)
SRCSET_ATTRS = ("data-srcset", "srcset")
# Not the picture: an inline data: URL, an SVG placeholder, or the local copy a browser's
# "save page" wrote beside the HTML (``./Title_files/x.jpg``: a path segment ending in
# ``_files``, which is what ``_files/`` anywhere means; written so, the search does not try a
# segment at every slash of a long image URL).
_PLACEHOLDER = re.compile(r"^data:|\.svg(?:$|\?)|_files/", re.IGNORECASE)
_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def article_body(body_el: HtmlElement, base: str) -> tuple[str, str, list[Image]]:
    """(sanitised HTML, text, inline images) of the article body; the page's tree is untouched."""
    body = copy.deepcopy(body_el)
    body.tail = None
    remove(chrome(body, base))
    embeds = _embeds_as_links(body)

    images: list[Image] = []
    holders: list[HtmlElement] = []
    for img in INLINE_IMAGES(body):
        src = image_url(img, base)
        if _is_pixel(img):
            # Spacers and tracking pixels are not pictures of anything.
            remove([img])
            continue
        if not src:
            continue
        img.set("src", src)
        holder = next(iter(IMAGE_HOLDER(img)), None)
        caption = credit = None
        if holder is not None:
            cap = next(iter(IMAGE_CAPTION(holder)), None)
            cred = next(iter(IMAGE_CREDIT(holder)), None)
            caption = inline_text(cap) if cap is not None else None
            credit = inline_text(cred) if cred is not None else None
            holders.append(holder)
        images.append(
            Image(
                url=src,
                caption=caption or None,
                credit=credit or None,
                alt=normalize_space(img.get("alt")) or None,
            )
        )
    _absolute_links(body, base)
    # The wrapper div is not an allowed tag: nh3 keeps its content, drops the div itself.
    html = sanitize_html(etree.tostring(body, method="html", encoding="unicode"))

    # Captions and credits belong to their images, not to the text; nor do embeds' links (so a
    # content hash does not move when only the way an embed is kept changes).
    remove(holders)
    remove(embeds)
    text = block_text(body)
    return html, text, images


def chrome(body: HtmlElement, base: str) -> list[HtmlElement]:
    """What inside a body is never article content: by class or tag, and by what it is."""
    found: list[HtmlElement] = []
    for el in body.iter(etree.Element):
        if el is body:
            continue
        tag = el.tag
        # One call names an element's attributes (most in a body have none): the tests of
        # attributes run only on those it has.
        names = el.keys()
        if tag in CHROME_TAGS or (names and _marked_as_chrome(el, tag, names)):
            found.append(_signup_block(el, body) if tag in ("form", "input") else el)
        elif (
            tag in _LEAF_BLOCKS
            and not any(child.tag in _BLOCK_CHILDREN for child in el)
            and _is_worded_chrome(el, base)
        ):
            # Only blocks of inline content: a promo or a label is a line, never a wrapper.
            found.append(el)
    return found


def _marked_as_chrome(el: HtmlElement, tag: str, names: list[str]) -> bool:
    """Chrome by its attributes: a chrome class, an ad slot's id or attributes, an e-mail field."""
    return (
        ("class" in names and not CHROME_CLASSES.isdisjoint(el.get("class", "").split()))
        or ("id" in names and el.get("id", "").startswith("div-gpt-ad"))
        or not AD_ATTRIBUTES.isdisjoint(names)
        or (tag == "input" and el.get("type", "").lower() == "email")
    )


def _signup_block(el: HtmlElement, body: HtmlElement) -> HtmlElement:
    """A sign-up form goes with the box around it (its pitch and its button): the largest
    ancestor inside the body that is still short, never a wrapper holding the article."""
    parent = el.getparent()
    while (
        parent is not None
        and parent is not body
        and len(normalize_space(parent.text_content()).split()) <= _SHORT
    ):
        el, parent = parent, parent.getparent()
    return el


def _is_worded_chrome(el: HtmlElement, base: str) -> bool:
    raw = el.text_content()
    # A paragraph of argument: no need to count all its words, nor to clean its spaces
    # (cleaning only adds words: zero-width spaces become spaces).
    if len(raw) > _SHORT * 20 or len(raw.split(None, _SHORT)) > _SHORT:
        return False
    text = normalize_space(raw)
    if not text or len(text.split()) > _SHORT:
        return False
    if AD_LABEL.match(text):
        return True
    # The links are looked for only once the words say promo or sign-up (most blocks say
    # neither): ElementPath's findall costs more than both regular expressions.
    lead = PROMO_LEAD.match(text)
    # The word every pitch holds, found first: the full pattern costs several times more.
    pitch = NEWSLETTER_WORD.search(text) is not None and NEWSLETTER.search(text) is not None
    links = el.findall(".//a[@href]") if lead or pitch else []
    if lead and links:
        # A promo only points at other posts: past its lead-in, every word is link text, and
        # every link stays on the site.
        rest = text[lead.end() :]
        linked = normalize_space(" ".join(a.text_content() for a in links))
        bare = rest
        for a in links:
            bare = bare.replace(normalize_space(a.text_content()), " ", 1)
        if (
            re.sub(r"[\W_]+", "", bare) == ""
            and linked
            and all(
                not _ABSOLUTE.match(a.get("href", "").strip()) or same_site(a.get("href"), base)
                for a in links
            )
        ):
            return True
    return pitch and bool(links or el.find(".//button") is not None)


def _embeds_as_links(body: HtmlElement) -> list[HtmlElement]:
    """Rendered embeds become what the page had before scripts ran: a tweet is a blockquote of
    its text and a link to the post. Any other embedded frame (a video, a post) becomes a link
    to what it showed, so a reader still sees that something was there and where it lives; no
    iframe is ever stored. Returns those links (they are not body text)."""
    if body.find(".//iframe") is None:
        return []  # no embed was rendered: nothing to undo
    for holder in RENDERED_TWEET(body):
        # widgets.js replaced the blockquote: only the iframe knows which post it shows.
        tweet_id = next(
            (i for f in EMBED_FRAMES(holder) for i in [_tweet_id(f)] if i is not None), None
        )
        if tweet_id is None:
            continue
        url = f"https://twitter.com/i/status/{tweet_id}"
        quote = etree.Element("blockquote", {"class": "twitter-tweet"})
        para = etree.SubElement(quote, "p")
        link = etree.SubElement(para, "a", {"href": url})
        link.text = url
        quote.tail = holder.tail
        holder.getparent().replace(holder, quote)
    links: list[HtmlElement] = []
    for frame in EMBED_FRAMES(body):
        parent = frame.getparent()
        if parent is None:
            continue
        src = (frame.get("src") or frame.get("data-src") or "").strip()
        if src.startswith(("http://", "https://", "//")) and _tweet_id(frame) is None:
            host = urlsplit(src if "://" in src else "https:" + src).netloc
            link = body.makeelement("a", {"href": src})
            link.text = f"Embedded media: {host}"
            link.tail = frame.tail
            parent.replace(frame, link)
            links.append(link)
            continue
        # Keep what follows the frame: drop_tree keeps the tail.
        frame.drop_tree()
    return links


def _tweet_id(frame: HtmlElement) -> str | None:
    value = (frame.get("data-tweet-id") or "").strip()
    if TWEET_ID.match(value):
        return value
    src = frame.get("src") or ""
    if "twitter.com" not in src and "x.com" not in src:
        return None
    for value in parse_qs(urlsplit(src).query).get("id", []):
        if TWEET_ID.match(value):
            return value
    return None


def _absolute_links(body: HtmlElement, base: str) -> None:
    for el in LINKS(body):
        attr = "href" if el.tag == "a" else "src"
        value = el.get(attr, "").strip()
        if value and not _ABSOLUTE.match(value):
            el.set(attr, urljoin(base, value))


def _is_pixel(img: HtmlElement) -> bool:
    return any((img.get(dim) or "").strip() in ("0", "1", "2") for dim in ("width", "height"))


def image_url(el: HtmlElement, base: str) -> str | None:
    """The real URL of a lazily loaded image (``src`` may be a placeholder), or of the first
    image inside ``el``."""
    for attr in IMAGE_ATTRS:
        value = (el.get(attr) or "").strip()
        if value and not _PLACEHOLDER.search(value):
            return join_url(base, value)
    for attr in SRCSET_ATTRS:
        best = _widest(el.get(attr) or "")
        if best and not _PLACEHOLDER.search(best):
            return join_url(base, best)
    img = el.find(".//img") if el.tag != "img" else None
    return image_url(img, base) if img is not None else None


def _widest(srcset: str) -> str | None:
    """The widest candidate of a ``srcset`` (``url 480w, url 960w`` or ``url 2x``)."""
    best, best_size = None, -1.0
    for candidate in srcset.split(","):
        bits = candidate.split()
        if not bits:
            continue
        size = 0.0
        if len(bits) > 1 and bits[1][:-1].replace(".", "", 1).isdigit():
            size = float(bits[1][:-1])
        if size > best_size:
            best, best_size = bits[0], size
    return best
