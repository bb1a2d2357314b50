"""A run killed at EVERY crash point converges: for each platform, representative runs
are killed at each point they pass, one point at a time, and each time the next run (the
same command: it resumes from the checkpoints the killed one left) must build exactly the
archive an uninterrupted run builds (same rows, same files). The runs:

* the first `archiver export` of a small account, as the daemon runs it (the middle pass of
  each kind of point; every point in the soak);
* a later API export over the filled archive, after posts were published, edited and
  deleted and comments came and went on the platform: an incremental run (TikTok,
  Instagram, Facebook, Threads, Mastodon) or a full listing that marks deleted what is gone
  (YouTube, Bluesky), and with ARCHIVER_SOAK=1 both kinds for every platform;
* the import of each platform's official export file over an archive the API filled
  (Facebook's: over the person's profile, its export being a profile's; TikTok's walks the
  middle pass of each kind in the suite, every point in the soak);
* LinkedIn's export imported into a new archive (most members have no API);
* X's archive imported into a new archive (its API is paid: most people have only that),
  killed just after a media file was stored and at the last commit in the suite.

LinkedIn and Pinterest, added last, walk two points in the suite (two_points: amid a
download or before a middle commit, and the last commit): Pinterest's first export and
LinkedIn's export imported; their later runs and every point only in the soak.

The later runs walk two of their points in the suite (``two_points``: amid a download and
the last commit; the first exports above meet every kind mid-run) to keep the suite's time
modest; the opt-in soak (ARCHIVER_SOAK=1, `make soak`) walks every point of them, for both
kinds of later export on every platform.

The kills are deterministic (src/archiver/crashpoints.py): the uninterrupted run, with
ARCHIVER_CRASH_COUNTS set, says how many times it passed each point — just before and
just after every commit of the archive, mid-download (half a .part left behind), just
before and just after a stored file's rename — and the walk sets ARCHIVER_CRASH_AT to
each of them in turn. Nothing is aimed by timing, so a busy machine only makes it slower.

Everything is real: the `archiver` console script in subprocesses, `archiver simulate
PLATFORM` in another process over loopback HTTP (for the later runs the same fake served
over loopback by the test's own process, which changes its world between two runs), `archiver auth` with the test playing
the browser, SQLite files on disk. Helpers: cli_world.py, crash_world.py. The random
SIGKILLs of test_e2e_crash.py / test_platforms_e2e.py are an opt-in soak on top.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from cli_world import (authorize, cli_env, query, run_cli, simulated_account_options, start_simulator,
                       write_account_config)
from crash_world import (archive_contents, crash_at, crash_points_passed, every_crash_point, finish,
                         media_files)

# Small worlds: every point of a run is walked, and each costs two runs of `archiver`
# (about 170 points in all). Still every kind of point: pages, downloads, renames.
POSTS = 2
FOLLOWERS = 1
# No timing is aimed at, so a busy machine only makes the walk slower: this is a guard
# against a hang, far above the minute or two a walk takes.
WALK_TIMEOUT_S = 1200
SIMULATOR_EXTRA = {"tiktok": [], "instagram": ["--rate-limit", "1000000"],
                   "youtube": ["--daily-quota", "1000000", "--comment-threads", "1"],
                   "bluesky": ["--rate-limit", "1000000"],
                   "mastodon": ["--rate-limit", "1000000", "--paged-limit", "1000000"],
                   "facebook": ["--rate-limit", "1000000", "--client-secret", "fake-client-secret"],
                   "threads": ["--rate-limit", "1000000"], "linkedin": ["--rate-limit", "1000000"],
                   "pinterest": ["--daily-limit", "1000000"], "x": ["--rate-limit", "1000000"]}
# What a run of each platform passes besides commits: LinkedIn gives links to media, never
# the files, so its runs download nothing.
NO_DOWNLOADS = {"linkedin"}


def kinds_of(platform: str, kinds: set[str]) -> set[str]:
    """The kinds of crash points a run of ``platform`` must meet, of ``kinds``."""
    return {kind for kind in kinds if kind in {"before-commit", "commit"}} if platform in NO_DOWNLOADS else kinds


def assert_converged(folder: Path, expected: dict, expected_files: dict, point: str) -> None:
    got = archive_contents(folder)
    for table in expected:
        assert got[table] == expected[table], f"{table} differs after a crash at {point}"
    assert media_files(folder) == expected_files, f"media files differ after a crash at {point}"
    # The killed run is recorded as interrupted (or ok, when it died after its last
    # commit); none is left 'running', and the run that resumed ended well.
    statuses = [status for (status,) in query(folder, "SELECT status FROM runs ORDER BY run_id")]
    assert statuses[-1] == "ok" and set(statuses[:-1]) <= {"interrupted", "ok"}, (point, statuses)


def sample_points(points: list[str]) -> list[str]:
    """A few points spread over the run: the middle of its commits (killed just before
    one), the last commit (where it finishes: tombstones, the listing's end, the import
    closed), and the middle download and rename when it has them. The same sample every
    time, so a failure names a point that fails again."""
    def of(kind: str) -> list[str]:
        return [point for point in points if point.split(":")[0] == kind]

    sampled = []
    for kind, pick in (("before-commit", "middle"), ("commit", "last"), ("download", "middle"),
                       ("rename", "middle")):
        passes = of(kind)
        if passes:
            sampled.append(passes[-1] if pick == "last" else passes[(len(passes) - 1) // 2])
    return sampled


def middle_of_each_kind(points: list[str]) -> list[str]:
    """The middle pass of every kind of point: each kind met once, mid-run, where a resumed
    run has the most to pick up (the soak walks them all)."""
    kinds = dict.fromkeys(point.split(":")[0] for point in points)
    picked = []
    for kind in kinds:
        passes = [point for point in points if point.split(":")[0] == kind]
        picked.append(passes[(len(passes) - 1) // 2])
    return picked


def two_points(points: list[str]) -> list[str]:
    """For the later runs, and the platforms added last (LinkedIn, Pinterest), in the suite: a kill amid a
    download (half a .part left; else just before the middle commit) and one at the last
    commit (where the run finishes: the listing's end, tombstones, the import closed)."""
    downloads = [point for point in points if point.startswith("download:")]
    befores = [point for point in points if point.startswith("before-commit:")]
    middle = downloads or befores
    commits = [point for point in points if point.startswith("commit:")]
    return [middle[(len(middle) - 1) // 2], commits[-1]]


def two_points_kinds(platform: str) -> set[str]:
    """The kinds of the two points two_points picks of a run of ``platform``."""
    return {"commit", "before-commit" if platform in NO_DOWNLOADS else "download"}


def walk_every_crash_point(args_for, env: dict, reference: Path, scratch: Path, logs: Path,
                           prepare=lambda folder: None, sample=False,
                           kinds: set[str] = frozenset({"before-commit", "commit", "download", "before-rename",
                                                        "rename"})) -> list[str]:
    """Build ``reference`` with one uninterrupted run of ``args_for(reference)``, counting
    the crash points it passes; then, for every one of them (or a ``sample``: True for
    sample_points, or a function choosing the points), run the
    same in a fresh ``scratch`` archive (``prepare``d as the reference was), killed at
    that point, run it again to the end, and check it converged. Returns the points walked."""
    prepare(reference)
    passed = crash_points_passed(args_for(reference), env, reference, logs)
    points = every_crash_point(passed)
    if sample:
        points = (sample if callable(sample) else sample_points)(points)
    expected, expected_files = archive_contents(reference), media_files(reference)
    # A walk that never met a download or a rename would prove little.
    assert {point.split(":")[0] for point in points} >= kinds, passed
    for point in points:
        if scratch.exists():
            shutil.rmtree(scratch)
        prepare(scratch)
        crash_at(point, args_for(scratch), env, scratch, logs)
        finish(args_for(scratch), env, scratch, logs)
        assert_converged(scratch, expected, expected_files, point)
    return points


# The first exports walk middle_of_each_kind of theirs in the suite (one pass of each kind
# of point), Pinterest
# two_points (LinkedIn's API export none: its export's import walks two points below, its
# connector's tests kill its snapshot pass); every point in the soak: the suite must stay
# well under 20 minutes on a 2-core machine.
EVERY_POINT_IN_SUITE: tuple[str, ...] = ()
SAMPLED_IN_SUITE = ("tiktok", "instagram", "youtube", "bluesky", "mastodon", "facebook", "threads")
TWO_POINTS_IN_SUITE = ("pinterest",)
SOAK_ONLY = ("linkedin",)
FIRST_EXPORTS = [pytest.param(platform, False, id=platform) for platform in EVERY_POINT_IN_SUITE] + [
    *[pytest.param(platform, middle_of_each_kind, id=f"{platform}-middle-of-each-kind") for platform in SAMPLED_IN_SUITE],
    *[pytest.param(platform, two_points, id=f"{platform}-two-points") for platform in TWO_POINTS_IN_SUITE],
    *[pytest.param(platform, False, marks=pytest.mark.soak, id=f"{platform}-every-point")
      for platform in (*SAMPLED_IN_SUITE, *TWO_POINTS_IN_SUITE, *SOAK_ONLY)]]


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("platform,sampled", FIRST_EXPORTS)
def test_a_first_export_killed_at_every_crash_point_converges(tmp_path, platform, sampled):
    world = start_simulator(tmp_path / "sim", videos=POSTS, followers=FOLLOWERS, platform=platform,
                            extra=SIMULATOR_EXTRA[platform])
    try:
        env = cli_env(tmp_path / "state", platform=platform)
        reference, scratch, logs = tmp_path / "reference", tmp_path / "crashed", tmp_path / "logs"
        write_account_config(reference, world.base_url, platform=platform)
        authorize(reference, env, platform=platform)  # both archives' account is "main": one grant serves both

        def export(folder: Path) -> list[str]:
            return ["export", "--platform", platform, "--archive", str(folder)]

        points = walk_every_crash_point(
            export, env, reference, scratch, logs,
            prepare=lambda folder: write_account_config(folder, world.base_url, platform=platform),
            sample=sampled, kinds=two_points_kinds(platform) if sampled is two_points else kinds_of(
                platform, {"before-commit", "commit", "download", "before-rename", "rename"}))
    finally:
        world.stop()
    print(f"{platform}: walked {len(points)} crash points")
    # Not trivially equal: the small world is all there.
    assert query(reference, "SELECT count(*) FROM posts WHERE deleted_at IS NULL")[0][0] >= POSTS
    assert query(scratch, "SELECT count(*) FROM post_media WHERE status != 'ok' OR sha256 IS NULL") == [(0,)]
    assert query(scratch, "PRAGMA integrity_check") == [("ok",)]
    verify = run_cli(["verify", "--archive", str(scratch)], env)
    assert verify.returncode == 0, verify.describe()


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("sample", [pytest.param(middle_of_each_kind, id="middle-of-each-kind"),
                                    pytest.param(False, marks=pytest.mark.soak, id="every-point")])
def test_a_tiktok_export_file_import_killed_at_every_crash_point_converges(tmp_path, sample):
    """The official "Download your data" zip, imported over an archive the API filled:
    the export's own files are copied in (renames), its posts matched to the API's."""
    from archiver_connectors.tiktok.sim.fake import FakeTikTok, FakeTikTokConfig

    world = start_simulator(tmp_path / "sim", videos=POSTS, followers=FOLLOWERS)
    try:
        env = cli_env(tmp_path / "state")
        filled, reference, scratch, logs = (tmp_path / name for name in ("filled", "reference", "crashed", "logs"))
        write_account_config(filled, world.base_url)
        authorize(filled, env)
        finish(["export", "--platform", "tiktok", "--full", "--archive", str(filled)], env, filled, logs)
        # The same seed builds the same world; its CDN links are valid on the simulator.
        twin = FakeTikTok(FakeTikTokConfig(videos=POSTS, followers=FOLLOWERS, seed=1), base_url=world.base_url)
        export_file = tmp_path / "TikTok_Data_1.zip"
        export_file.write_bytes(twin.export_zip(layout="new"))

        points = walk_every_crash_point(
            lambda folder: ["import", str(export_file), "--archive", str(folder)], env, reference, scratch, logs,
            prepare=lambda folder: shutil.copytree(filled, folder), sample=sample)
    finally:
        world.stop()
    print(f"tiktok import: walked {len(points)} crash points")
    assert query(scratch, "SELECT count(*) FROM imports") == [(1,)]


# --------------------------------------------------------------------------- later runs


LATER_POSTS = 4
PLATFORMS = ("tiktok", "instagram", "youtube", "bluesky", "mastodon", "facebook", "threads")
LATEST = ("linkedin", "pinterest", "x")     # their later runs are walked in the soak only (the suite's time)


class InProcessWorld:
    """The platform's fake served over loopback HTTP by this process (the `archiver` runs
    are still subprocesses), so that the test can change the world between two runs: what
    `archiver simulate` serves, with the same knobs as SIMULATOR_EXTRA."""

    def __init__(self, platform: str, posts: int, followers: int, seed: int = 1, **knobs):
        from importlib import import_module

        from cli_world import BLUESKY_APP_PASSWORD, BLUESKY_HANDLE

        module = import_module(f"archiver_connectors.{platform}.sim.fake")
        config = {
            "tiktok": lambda: module.FakeTikTokConfig(videos=posts, followers=followers, seed=seed),
            "instagram": lambda: module.FakeInstagramConfig(media=posts, followers=followers, seed=seed,
                                                            rate_limit=1_000_000),
            "youtube": lambda: module.FakeYouTubeConfig(videos=posts, followers=followers, seed=seed,
                                                        comment_threads=3, daily_quota=1_000_000),
            "bluesky": lambda: module.FakeBlueskyConfig(posts=posts, followers=followers, seed=seed,
                                                        rate_limit=1_000_000, handle=BLUESKY_HANDLE,
                                                        app_password=BLUESKY_APP_PASSWORD),
            "mastodon": lambda: module.FakeMastodonConfig(statuses=posts, followers=followers, seed=seed,
                                                          rate_limit=1_000_000, paged_limit=1_000_000),
            "facebook": lambda: module.FakeFacebookConfig(posts=posts, followers=followers, seed=seed,
                                                          rate_limit=1_000_000, client_secret="fake-client-secret"),
            "threads": lambda: module.FakeThreadsConfig(posts=posts, followers=followers, seed=seed,
                                                        rate_limit=1_000_000),
            "linkedin": lambda: module.FakeLinkedInConfig(posts=posts, followers=followers, seed=seed,
                                                          rate_limit=1_000_000),
            "pinterest": lambda: module.FakePinterestConfig(posts=posts, followers=followers, seed=seed,
                                                            daily_limit=1_000_000),
            "x": lambda: module.FakeXConfig(posts=posts, followers=followers, seed=seed, rate_limit=1_000_000),
        }[platform]()
        for knob, value in knobs.items():   # more of the fake's config (Facebook: profile_posts)
            setattr(config, knob, value)
        fake_class = {"tiktok": "FakeTikTok", "instagram": "FakeInstagram", "youtube": "FakeYouTube",
                      "bluesky": "FakeBluesky", "mastodon": "FakeMastodon", "facebook": "FakeFacebook",
                      "threads": "FakeThreads", "linkedin": "FakeLinkedIn", "pinterest": "FakePinterest",
                      "x": "FakeX"}[platform]
        self.fake = getattr(module, fake_class)(config)
        self.server, _thread = module.serve(self.fake)
        self.base_url = self.fake.base_url
        self.options = dict(videos=posts, followers=followers, seed=seed, latency_ms=0, platform=platform)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def change_the_world(platform: str, fake) -> None:
    """Between two runs: a post published, an older one edited, another deleted; comments
    added and deleted where the platform's fake can; counts moved."""
    if platform == "tiktok":
        first, last = fake.videos[0]["id"], fake.videos[-1]["id"]
        fake.add_video()
        fake.edit_caption(first, "An edited caption")
        fake.set_counts(first, like_count=4242)
        fake.delete_video(last)
    elif platform == "instagram":
        newest = fake.newest_first()
        fake.add_media()
        fake.edit_caption(newest[0]["id"], "An edited caption")
        fake.add_comment(newest[0]["id"], "A new comment")
        fake.delete_media(newest[-1]["id"])
    elif platform == "youtube":
        first, last = fake.videos[0]["id"], fake.videos[-1]["id"]
        fake.add_video()
        fake.edit_video(first, title="An edited title")
        thread = fake.add_thread(first, replies=7)
        fake.add_reply(thread["id"])
        fake.delete_comment(fake.threads[-1]["id"])
        fake.delete_video(last)
    elif platform == "bluesky":
        uris = fake.post_uris()
        fake.add_post("A new post", with_image=True)
        fake.add_reply(uris[0], text="a new reply")
        gone = next((view["uri"] for views in fake.replies.values() for view in views), None)
        if gone:
            fake.delete_reply(gone)
        fake.delete_post(uris[-1])
    elif platform == "mastodon":
        statuses = sorted(fake.own_statuses(), key=lambda status: int(status["id"]))
        fake.add_status("<p>A new post</p>")
        fake.edit_status(statuses[-1]["id"], "<p>An edited post</p>")
        fake.add_reply(statuses[-1]["id"], "<p>A new reply</p>")
        fake.delete_status(statuses[0]["id"])
    elif platform == "facebook":    # the Page's posts
        newest = fake.newest_first()
        fake.add_post("photo")
        fake.edit_message(newest[0]["id"], "An edited message")
        fake.add_comment(newest[0]["id"], "A new comment")
        gone = next((comment["id"] for post in newest for comment in post["comments"]), None)
        if gone:
            fake.delete_comment(gone)
        fake.delete_post(newest[-1]["id"])
    elif platform == "threads":
        newest = fake.newest_first()
        fake.add_post("A new post", media_type="IMAGE")
        fake.add_reply(newest[0]["id"], "A new reply")
        others = fake.others_replies()
        if others:
            fake.delete_reply(others[0]["id"])
        fake.set_counts(newest[0]["id"], likes=4242)
        fake.delete_post(newest[-1]["id"])
    elif platform == "linkedin":
        urns = list(fake.posts)
        fake.add_post("A new post")
        fake.add_comment("A new comment")
        fake.add_connection()
        fake.delete_post(urns[-1])
    elif platform == "pinterest":
        pins = list(fake.pins)
        fake.add_pin()
        fake.edit_pin(pins[0], title="An edited title", description="An edited description")
        fake.add_follower()
        fake.delete_pin(pins[-1])
    elif platform == "x":
        posts = list(fake.posts)
        fake.add_post("A new post", photos=1)
        fake.edit_post(posts[0], "An edited post")
        fake.add_follower()
        fake.delete_post(posts[-1])


FULL_LATER = {"youtube", "bluesky"}     # their later run is a full listing (the others': incremental)
# (platform, the later run's mode, sample the points): the suite samples, the soak walks every point.
LATER_RUNS = [(platform, "full" if platform in FULL_LATER else "incremental", two_points) for platform in PLATFORMS] + [
    pytest.param(platform, mode, False, marks=pytest.mark.soak, id=f"{platform}-{mode}-every-point")
    for platform in (*PLATFORMS, *LATEST) for mode in ("incremental", "full")
    if (platform, mode) != ("x", "full")]   # X's --full is its incremental run (the API's window hides, never deletes)


def export_file_of(platform: str, world: InProcessWorld, folder: Path) -> Path:
    """The platform's own export of the in-process world, as its user downloads it."""
    folder.mkdir(parents=True, exist_ok=True)
    if platform == "instagram":
        from archiver_connectors.instagram.sim.fake import write_matching_export

        return write_matching_export(world.fake, str(folder / "instagram-export.zip"))
    if platform == "youtube":
        from archiver_connectors.youtube.sim.takeout import build_takeout

        [part] = build_takeout(folder, world=world.fake.portability_world())
        return part
    if platform in ("threads", "linkedin", "pinterest", "x"):
        from importlib import import_module

        name = {"threads": "threads-export.zip", "linkedin": "Complete_LinkedInDataExport_12-01-2026.zip",
                "pinterest": "pinterest-export.zip", "x": X_ARCHIVE_NAME}[platform]
        return import_module(f"archiver_connectors.{platform}.sim.fake").write_matching_export(world.fake,
                                                                                             folder / name)
    if platform == "bluesky":
        from cli_world import BLUESKY_HANDLE

        path = folder / f"repo-{BLUESKY_HANDLE}.car"
        path.write_bytes(world.fake.repo_car())
        return path
    from test_platforms_e2e import mastodon_archive_of_simulated_world

    return mastodon_archive_of_simulated_world(world, folder)


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("platform,mode,sample", LATER_RUNS)
def test_later_runs_over_a_filled_archive_killed_at_crash_points_converge(tmp_path, platform, mode, sample):
    """Over an archive a first full export filled (anything may be deleted: nothing is
    held back): an API export after the world changed, then (Instagram, Threads, YouTube,
    Bluesky, Mastodon: TikTok's is walked above) the import of the platform's official export file
    of the changed world, its own files copied in and its posts matched to the API's."""
    world = InProcessWorld(platform, LATER_POSTS, FOLLOWERS)
    try:
        env = cli_env(tmp_path / "state", platform=platform)
        filled, logs = tmp_path / "filled", tmp_path / "logs"
        write_account_config(filled, world.base_url, platform=platform,
                             options=simulated_account_options(platform, world.base_url) + "max_deleted_percent = 100\n")
        authorize(filled, env, platform=platform)
        finish(["export", "--platform", platform, "--full", "--archive", str(filled)], env, filled, logs)
        change_the_world(platform, world.fake)
        # The archive stamps rows to the second: a later run that began in the second the
        # first one ended would find its rows "first seen" as its listing started (never
        # judged by it) and its count samples at the same instant. Every later run starts
        # in a later second, so the reference and the crashed runs see the same world.
        time.sleep(1.05 - time.time() % 1)

        reference, scratch = tmp_path / "reference", tmp_path / "crashed"
        flags = ["--full"] if mode == "full" else []
        points = walk_every_crash_point(
            lambda folder: ["export", "--platform", platform, *flags, "--archive", str(folder)], env, reference,
            scratch, logs, prepare=lambda folder: shutil.copytree(filled, folder), sample=sample,
            kinds=two_points_kinds(platform) if sample is two_points else kinds_of(
                platform, {"before-commit", "commit", "download"}))
        print(f"{platform} {mode}: walked {len(points)} crash points")
        # The changes arrived: a new post, and (full listings) what was deleted is marked.
        assert query(scratch, "SELECT count(*) FROM posts")[0][0] > query(filled, "SELECT count(*) FROM posts")[0][0]
        if mode == "full":
            assert query(scratch, "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL")[0][0] >= 1
        assert query(scratch, "PRAGMA integrity_check") == [("ok",)]
        if platform in ("tiktok", "facebook"):
            return

        export_file = export_file_of(platform, world, tmp_path / "downloads")
        updated = tmp_path / "updated"
        shutil.copytree(reference, updated)
        for folder in (tmp_path / "imported", tmp_path / "import-crashed"):
            shutil.rmtree(folder, ignore_errors=True)
        points = walk_every_crash_point(
            lambda folder: ["import", str(export_file), "--archive", str(folder)], env, tmp_path / "imported",
            tmp_path / "import-crashed", logs, prepare=lambda folder: shutil.copytree(updated, folder),
            sample=sample, kinds={"before-commit", "commit"})
        print(f"{platform} import: walked {len(points)} crash points")
        assert query(tmp_path / "import-crashed", "SELECT count(*) FROM imports") == [(1,)]
    finally:
        world.stop()


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("sample", [True, pytest.param(False, marks=pytest.mark.soak, id="every-point")])
def test_a_facebook_profile_export_import_killed_at_crash_points_converges(tmp_path, sample):
    """The person's "Download your information" imported over their profile's archive the
    API filled (/me/posts): its posts land on the API's rows (same second, same text), its
    friends, the comments written and the reactions given are added."""
    from archiver_connectors.facebook.sim.fake import write_matching_export

    world = InProcessWorld("facebook", POSTS, FOLLOWERS, profile_posts=LATER_POSTS)
    try:
        env = cli_env(tmp_path / "state", platform="facebook")
        filled, logs = tmp_path / "filled", tmp_path / "logs"
        write_account_config(filled, world.base_url, platform="facebook", options="")   # no page: the profile
        authorize(filled, env, platform="facebook")
        finish(["export", "--platform", "facebook", "--full", "--archive", str(filled)], env, filled, logs)
        export_file = write_matching_export(world.fake, str(tmp_path / "facebook-export.zip"))

        points = walk_every_crash_point(
            lambda folder: ["import", str(export_file), "--archive", str(folder)], env, tmp_path / "imported",
            tmp_path / "crashed", logs, prepare=lambda folder: shutil.copytree(filled, folder), sample=sample,
            kinds={"before-commit", "commit"})
    finally:
        world.stop()
    print(f"facebook profile import: walked {len(points)} crash points")
    crashed = tmp_path / "crashed"
    assert query(crashed, "SELECT count(*) FROM imports") == [(1,)]
    # The export's posts met the API's: no post twice.
    assert query(crashed, "SELECT count(*) FROM posts") == query(filled, "SELECT count(*) FROM posts")
    assert query(crashed, "SELECT count(*) FROM follows WHERE kind = 'friends'")[0][0] > 0


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("sample", [pytest.param(two_points, id="two-points"),
                                    pytest.param(False, marks=pytest.mark.soak, id="every-point")])
def test_a_linkedin_export_imported_into_a_new_archive_killed_at_crash_points_converges(tmp_path, sample):
    """Most LinkedIn members have no API: their archive is their "Get a copy of your data"
    zip, imported alone (posts, comments and reactions they wrote, connections, invitations,
    follows, the profile), killed at crash points and imported again."""
    from archiver_connectors.linkedin.sim.export import make_world, write_export

    env = cli_env(tmp_path / "state", platform="linkedin")
    export_file = write_export(tmp_path / "Complete_LinkedInDataExport_12-01-2026.zip",
                               make_world(posts=LATER_POSTS, connections=3))
    points = walk_every_crash_point(
        lambda folder: ["import", str(export_file), "--archive", str(folder)], env, tmp_path / "imported",
        tmp_path / "crashed", tmp_path / "logs", sample=sample, kinds={"commit"})
    print(f"linkedin import: walked {len(points)} crash points")
    crashed = tmp_path / "crashed"
    assert query(crashed, "SELECT count(*) FROM imports") == [(1,)]
    assert query(crashed, "SELECT count(*) FROM posts")[0][0] == LATER_POSTS
    assert query(crashed, "SELECT count(*) FROM follows WHERE kind = 'friends'") == [(3,)]


X_ARCHIVE_NAME = "twitter-2026-03-06-6e1d0c.zip"


def a_rename_and_the_last_commit(points: list[str]) -> list[str]:
    """An import of an export's own files, in the suite: a kill just after the middle media
    file was renamed into place (stored, its row not committed) and one at the last commit."""
    renames = [point for point in points if point.startswith("rename:")]
    commits = [point for point in points if point.startswith("commit:")]
    return [renames[(len(renames) - 1) // 2], commits[-1]]


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("sample", [pytest.param(a_rename_and_the_last_commit, id="two-points"),
                                    pytest.param(False, marks=pytest.mark.soak, id="every-point")])
def test_an_x_archive_imported_into_a_new_archive_killed_at_crash_points_converges(tmp_path, sample):
    """X's "Download an archive of your data" is where most people's X archive comes from
    (the API is paid and reaches back 3,200 posts): imported alone (posts with their media
    files, deleted posts, likes, followers and following, the profile and its pictures),
    killed at crash points and imported again."""
    from archiver_connectors.x.sim.export import sample_world, write_archive

    world = sample_world()
    env = cli_env(tmp_path / "state")     # an import needs no app credentials
    export_file = write_archive(tmp_path / X_ARCHIVE_NAME, world)
    points = walk_every_crash_point(
        lambda folder: ["import", str(export_file), "--archive", str(folder)], env, tmp_path / "imported",
        tmp_path / "crashed", tmp_path / "logs", sample=sample,
        kinds={"rename", "commit"} if sample else {"before-commit", "commit", "before-rename", "rename"})
    print(f"x import: walked {len(points)} crash points")
    crashed = tmp_path / "crashed"
    assert query(crashed, "SELECT count(*) FROM imports") == [(1,)]
    assert query(crashed, "SELECT count(*) FROM posts")[0][0] == len(world.posts)
    assert query(crashed, "SELECT count(*) FROM follows WHERE kind = 'followers'") == [(len(world.followers),)]
    assert query(crashed, "SELECT count(*) FROM interactions WHERE kind = 'like'") == [(len(world.likes),)]


def spend_counted(folder: Path) -> int:
    """What the archive's runs counted as spent on X's API, in all (micro-dollars)."""
    import json

    rows = query(folder, "SELECT state FROM sync_state WHERE stream = 'spend'")
    return json.loads(rows[0][0])["total_micros"] if rows else 0


def a_download_and_a_commit_after_a_paid_request(points: list[str]) -> list[str]:
    """X's API export in the suite: a kill amid the middle download (its page's posts paid
    for, not committed) and one just before the run's third commit, the profile's (after the
    run's record and its repairs; X has answered /2/users/me and charged for it): the run
    converges, and the money counted still covers what X charged."""
    downloads = [point for point in points if point.startswith("download:")]
    befores = [point for point in points if point.startswith("before-commit:")]
    return [downloads[(len(downloads) - 1) // 2], befores[min(2, len(befores) - 1)]]


@pytest.mark.timeout(WALK_TIMEOUT_S)
@pytest.mark.parametrize("sample", [pytest.param(a_download_and_a_commit_after_a_paid_request, id="two-points"),
                                    pytest.param(False, marks=pytest.mark.soak, id="every-point")])
def test_an_x_api_export_killed_at_crash_points_converges_and_never_counts_less_than_x_charged(tmp_path, sample):
    """X's API within a budget (pages of 5 posts, their media from X's CDN), killed at crash
    points: the next run converges to the uninterrupted archive, and the money the runs
    counted (`archiver status`'s "API spend") is never less than what the fake X charged for
    them (a request reserved before it leaves, its price settled after: a kill in between
    counts the reservation, erring on the side of the money)."""
    world = InProcessWorld("x", POSTS + 4, FOLLOWERS, max_results_cap=5)
    try:
        env = cli_env(tmp_path / "state", platform="x")
        reference, scratch, logs = tmp_path / "reference", tmp_path / "crashed", tmp_path / "logs"
        write_account_config(reference, world.base_url, platform="x")
        authorize(reference, env, platform="x")

        def export(folder: Path) -> list[str]:
            return ["export", "--platform", "x", "--archive", str(folder)]

        charged = world.fake.spent_micro
        passed = crash_points_passed(export(reference), env, reference, logs)
        assert spend_counted(reference) == world.fake.spent_micro - charged > 0
        points = every_crash_point(passed)
        points = sample(points) if sample else points
        assert {point.split(":")[0] for point in points} >= ({"before-commit", "download"} if sample else
                                                            {"before-commit", "commit", "download", "rename"}), passed
        expected, expected_files = archive_contents(reference), media_files(reference)
        for point in points:
            shutil.rmtree(scratch, ignore_errors=True)
            write_account_config(scratch, world.base_url, platform="x")
            charged = world.fake.spent_micro
            crash_at(point, export(scratch), env, scratch, logs)
            finish(export(scratch), env, scratch, logs)
            assert_converged(scratch, expected, expected_files, point)
            assert spend_counted(scratch) >= world.fake.spent_micro - charged, point
    finally:
        world.stop()
    print(f"x API export: walked {len(points)} crash points")
    assert query(scratch, "SELECT count(*) FROM posts")[0][0] == len(world.fake.posts)
