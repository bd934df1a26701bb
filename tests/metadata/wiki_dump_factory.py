"""Small Wikipedia pages-articles dumps in the real MediaWiki export format, written by the tests."""
from __future__ import annotations

import bz2
from pathlib import Path
from xml.sax.saxutils import escape

EN_PAGES = [
    {"title": "Golden Retriever", "text": (
        "{{Infobox dog breed|name=Golden {{nested|x}} }}\n"
        "'''Golden Retriever''' is a [[dog breed|breed]] of [[dog]]s from [[Scotland]]."
        "<ref name=\"a\">{{cite web|url=http://x}}</ref>"
        " The Golden Retriever likes water.<ref name=\"a\" />\n"
        "[[File:Dog.jpg|thumb|A [[dog]] swimming]]\n== History ==\n"
        "{| class=\"wikitable\"\n|-\n| tablecell || tablecell\n|}\n"
        "* Golden Retriever puppies &amp; kittens\n<!-- hiddencomment -->"
        "[[Category:Dog breeds]]\n[[de:Golden Retriever]]")},
    {"title": "Scotland",
     "text": "Scotland is a country. Golden Retriever dogs come from Scotland. See [http://example.org the site]."},
    {"title": "Talk:Scotland", "ns": 1, "text": "talkpageword talkpageword"},
    {"title": "Scotia", "redirect": "Scotland", "text": "#REDIRECT [[Scotland]] redirectword"},
    {"title": "Star Wars: A New Hope", "text": "A film from Scotland."},
    {"title": "Water", "text": "Water is wet. Dogs like water. water water water water water."},
]
ZH_PAGES = [
    {"title": "北京", "text": "北京是中华人民共和国的首都，也是中国的政治中心。"
                            "[[上海]]是中国最大的城市。北京大学位于北京。"},
    {"title": "上海", "text": "上海是中国的经济中心。上海位于长江口。[[文件:x.jpg|缩略图|图片说明文字]]"},
    {"title": "Wikipedia:关于", "ns": 4, "text": "项目页面"},
]

HEADER = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
          'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="0.10" xml:lang="{lang}">'
          """
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>{lang}wiki</dbname>
    <base>https://{lang}.wikipedia.org/wiki/Main_Page</base>
    <generator>MediaWiki 1.42.0-wmf.5</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="-2" case="first-letter">Media</namespace>
      <namespace key="0" case="first-letter" />
      <namespace key="1" case="first-letter">Talk</namespace>
      <namespace key="6" case="first-letter">{file_ns}</namespace>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="14" case="first-letter">{category_ns}</namespace>
    </namespaces>
  </siteinfo>
""")
PAGE = """  <page>
    <title>{title}</title>
    <ns>{ns}</ns>
    <id>{id}</id>{redirect}
    <revision>
      <id>{rev}</id>
      <timestamp>2024-01-01T00:00:00Z</timestamp>
      <contributor><username>Test</username><id>1</id></contributor>
      <model>wikitext</model>
      <format>text/x-wiki</format>
      <text bytes="{nbytes}" xml:space="preserve">{text}</text>
      <sha1>0</sha1>
    </revision>
  </page>
"""


def write_dump(path: Path, lang: str, pages: list[dict], compress: bool = False) -> Path:
    """Write pages [{title, text, ns=0, redirect=None}] as a MediaWiki XML export (optionally .bz2)."""
    file_ns, category_ns = ("文件", "Category") if lang == "zh" else ("File", "Category")
    parts = [HEADER.format(lang=lang, file_ns=file_ns, category_ns=category_ns)]
    for i, page in enumerate(pages, 1):
        redirect = f'\n    <redirect title="{escape(page["redirect"])}" />' if page.get("redirect") else ""
        parts.append(PAGE.format(title=escape(page["title"]), ns=page.get("ns", 0), id=i, rev=1000 + i,
                                 redirect=redirect, nbytes=len(page["text"].encode()), text=escape(page["text"])))
    parts.append("</mediawiki>\n")
    data = "".join(parts).encode("utf-8")
    if compress:
        path.write_bytes(bz2.compress(data))
    else:
        path.write_bytes(data)
    return path

