"""A post's page in `archiver serve`: its files with their alt text, and its comments
threaded with their authors — what a creator opens to find "every comment from their
audience with its author". Real Datasette (in-process ASGI client) over a real archive
written by the ArchiveWriter."""

from __future__ import annotations

import asyncio
import hashlib
import re

from archiver.archive import Archive
from archiver.archive.writer import ArchiveWriter, StoredFile
from archiver.records import Comment, MediaRef, Person, Post
from archiver.views.serve import make_datasette

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def build(folder) -> Archive:
    archive = Archive(folder)
    sha = hashlib.sha256(PNG).hexdigest()
    (archive.media_root / "ab").mkdir(parents=True, exist_ok=True)
    (archive.media_root / "ab" / f"{sha}.png").write_bytes(PNG)
    fan = Person("17841400000000001", handle="kite.fan", display_name="Kite Fan",
                 url="https://www.instagram.com/kite.fan/")
    other = Person("17841400000000002", handle="@quiet.one")  # YouTube-style handle, "@" included
    with archive.writing():
        writer = ArchiveWriter(archive.db, platform="instagram", account_id="instagram:ig", source="api",
                               now="2024-05-01T00:00:00Z")
        writer.write_post(Post("9001", "2024-04-01T10:00:00Z", kind="image", text="Kites at dawn"))
        writer.link_media("9001", MediaRef("https://cdn.example/k.png", "image", description="Three red kites"),
                          StoredFile(sha, f"ab/{sha}.png", "image/png", len(PNG)), "https://cdn.example/k.png")
        # Written out of order on purpose: the page orders threads, replies after their parent.
        writer.write_comment(Comment("c3", "thanks both!", "2024-04-01T12:00:00Z", post_native_id="9001",
                                     by_owner=True, parent_native_id="c1"))
        writer.write_comment(Comment("c2", "second thread", "2024-04-01T11:30:00Z", post_native_id="9001",
                                     author=other))
        writer.write_comment(Comment("c1", "what a sight <3", "2024-04-01T11:00:00Z", post_native_id="9001",
                                     author=fan))
        writer.write_comment(Comment("c9", "on another post", "2024-04-01T11:00:00Z", post_native_id="9002",
                                     author=fan))
    return archive


def page(archive: Archive, path: str) -> str:
    async def fetch():
        response = await make_datasette(archive).client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    return asyncio.run(fetch())


def test_the_post_page_shows_alt_text_and_its_comments_threaded_with_authors(tmp_path):
    archive = build(tmp_path / "archive")
    html = page(archive, "/archive/posts/instagram,9001")
    assert 'alt="Three red kites"' in html and "image: Three red kites" in html
    assert "3 comments" in html and "on another post" not in html
    section = html[html.index('class="archiver-comments"'):]
    texts = re.findall(r'<div class="text">(.*?)</div>', section)
    assert texts == ["what a sight &lt;3", "thanks both!", "second thread"]  # escaped, threaded, in time order
    first = section[:section.index("thanks both!")]
    assert '<a href="https://www.instagram.com/kite.fan/">Kite Fan</a>' in first and "@kite.fan" in first
    assert '<div class="archiver-comment reply by-owner">' in section
    assert "@quiet.one" in section and "@@" not in section
    archive.close()


def test_a_post_without_comments_has_no_comment_section(tmp_path):
    archive = build(tmp_path / "archive")
    with archive.writing():
        ArchiveWriter(archive.db, platform="instagram", account_id="instagram:ig", source="api",
                      now="2024-05-01T00:00:00Z").write_post(Post("9003", "2024-04-03T10:00:00Z", text="quiet"))
    assert 'class="archiver-comments"' not in page(archive, "/archive/posts/instagram,9003")
    archive.close()
