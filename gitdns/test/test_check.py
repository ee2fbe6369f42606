"""`gitdns check`: the broken-zone corpus, every check, key files, changes, trees, hooks."""

from __future__ import annotations

import io
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import dns.name
import pygit2
from twisted.trial.unittest import SynchronousTestCase

from gitdns import check
from gitdns.cli import main
from gitdns.zonefile import ZoneFileError
from gitdns.zones import parse_zone

BROKEN = Path(__file__).parent / "broken"
EXAMPLE = dns.name.from_text("example.com.")
MIRAGE = dns.name.from_text("mirage.")
SECRET = "kJJqipaQHQWqZL31Raar6uPnepGFIdtpjkXot9rv2xg="
OTHER = "cDK6sKyvlt8UBerZlmxuD84ih2KookJGDagJlLVNo20="


def zone(serial: int = 1, www: str = "1.1.1.1", extra: str = "") -> str:
    """The seed's mirage zone: SOA on line 3 (serial at column 22), www on line 6."""
    return (
        "$ORIGIN mirage.\n$TTL 3600\n"
        f"@\tSOA\tns1\thostmaster\t{serial}\t86400\t7200\t1048576\t3600\n"
        f"@\tNS\tns1\nns1\tA\t127.0.0.1\nwww\tA\t{www}\n{extra}"
    )


def lines(result: check.FileResult) -> list[str]:
    return [problem.text() for problem in result.problems]


def run(*argv: str) -> tuple[int, str, str]:
    """`gitdns ARGV` in-process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exit:  # argparse's usage errors
            status = exit.code if isinstance(exit.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def expected_corpus() -> dict[str, tuple[int, str]]:
    """broken/expected.txt: file -> (exit status, exact output)."""
    blocks: dict[str, tuple[int, str]] = {}
    text = (BROKEN / "expected.txt").read_text()
    for block in re.split(r"\n(?=== )", text):
        match = re.match(r"== (\S+) \(exit (\d)\)\n(.*)", block, re.DOTALL)
        if match:
            blocks[match[1]] = (int(match[2]), match[3].rstrip("\n") + "\n")
    return blocks


class CorpusTests(SynchronousTestCase):
    """Each broken zone file gives exactly the output written down for it."""

    def test_every_file_has_its_expected_output(self) -> None:
        expected = expected_corpus()
        files = sorted(path.name for path in BROKEN.glob("*.zone"))
        self.assertEqual(sorted(expected), files)
        self.assertGreaterEqual(len(files), 25)
        for name in files:
            result = check.check_file(name, (BROKEN / name).read_bytes(), origin=EXAMPLE)
            report = check.Report([result])
            status, output = expected[name]
            self.assertEqual(report.text(), output, name)
            self.assertEqual(report.exit_code, status, name)

    def test_the_command_prints_the_same(self) -> None:
        expected = expected_corpus()
        cwd = os.getcwd()
        os.chdir(BROKEN)
        self.addCleanup(os.chdir, cwd)
        for name in ("unknown-type.zone", "targets-without-address.zone", "no-ns.zone"):
            status, out, err = run("check", "--zone", "example.com", name)
            self.assertEqual((status, out, err), (*expected[name], ""))

    def test_reader_errors_are_the_servers_errors(self) -> None:
        """One parser: where the server refuses a file, check's first error is its message."""
        refused = 0
        for path in sorted(BROKEN.glob("*.zone")):
            try:
                text = path.read_bytes().decode("utf-8")
                parse_zone(EXAMPLE, text, path.name)
            except UnicodeDecodeError:
                continue
            except ZoneFileError as error:
                refused += 1
                result = check.check_file(path.name, path.read_bytes(), origin=EXAMPLE)
                self.assertEqual(str(result.errors[0]), str(error), path.name)
        self.assertGreaterEqual(refused, 15)


class ZoneTests(SynchronousTestCase):
    def check(self, text: str, **kw: object) -> check.FileResult:
        return check.check_zone(text, "mirage", MIRAGE, **kw)  # type: ignore[arg-type]

    def test_a_good_zone(self) -> None:
        result = self.check(zone())
        self.assertEqual(result.problems, [])
        self.assertEqual((result.serial, result.records), (1, 4))
        self.assertEqual(result.summary(), "mirage: ok (zone mirage., serial 1, 4 records)")

    def test_the_zone_is_the_file_name(self) -> None:
        result = check.check_zone(zone(), "some/dir/mirage")
        self.assertEqual(result.zone, "mirage.")
        self.assertEqual(result.file, "some/dir/mirage")
        with self.assertRaises(ValueError):
            check.check_zone(zone(), "dir/_keys")

    def test_a_file_name_that_is_no_zone_name_warns(self) -> None:
        text = zone().replace("$ORIGIN mirage.\n", "")
        result = check.check_zone(text, "db.mirage.zone", zone_from_file_name=True)
        self.assertEqual(
            lines(result),
            [
                "db.mirage.zone: warning: no $ORIGIN and no --zone: the zone is taken to be"
                " db.mirage.zone. (the file name)\n"
                "  hint: say which zone this is with --zone NAME (in a repository the file"
                " name is the zone name: name the file after the zone)"
            ],
        )
        self.assertEqual(check.check_zone(zone(), "mirage", zone_from_file_name=True).problems, [])

    def test_unknown_type_hints(self) -> None:
        for record, hint in [
            ("ftp\tCNAM\twww\n", "did you mean CNAME?"),
            ("ftp\tAAA\t::1\n", "did you mean AAAA?"),
            ("ftp\twww\n", "the record type (A, AAAA, CNAME, MX, NS, TXT...) is missing"),
            ("ftp\tFOOBAR\t1\n", "types gitdns does not know can be written TYPEnnn"),
            ("  ftp.mirage.\tA\t1.2.3.4\n", "a line that starts with white space"),
        ]:
            (problem,) = self.check(zone(extra=record)).problems
            self.assertEqual(problem.line, 7)
            self.assertTrue(problem.hint and problem.hint.startswith(hint), problem.hint)

    def test_soa_field_hints(self) -> None:
        six = zone().replace("hostmaster\t1\t", "hostmaster\t")
        (problem,) = self.check(six).problems
        self.assertEqual(problem.message, "missing minimum in SOA record")
        self.assertTrue(problem.hint and problem.hint.endswith("is the serial missing?"))
        bad = zone().replace("hostmaster\t1\t", "hostmaster\tone\t")
        (problem,) = self.check(bad).problems
        self.assertEqual(str(problem), "mirage:3:22: bad SOA serial 'one' (expecting a number)")
        self.assertTrue(problem.hint and problem.hint.startswith("an SOA record has seven"))

    def test_parenthesis_hints(self) -> None:
        text = zone().replace("hostmaster\t1\t", "hostmaster\t( 1 ; serial )\n\t")
        (problem,) = self.check(text).problems
        self.assertEqual(problem.message, "unbalanced parentheses: '(' is not closed")
        self.assertEqual(problem.hint, "the ')' on line 3 is inside a ';' comment, which hides it")
        text = zone().replace("hostmaster\t1\t", "hostmaster ; (\n\t1\t")
        (problem,) = self.check(text).problems
        self.assertEqual(str(problem), "mirage:3:21: missing serial in SOA record")
        self.assertEqual(problem.hint, "the '(' on line 3 is inside a ';' comment, which hides it")
        text = zone().replace("\t3600\n@", "\t3600 ; (\n\t)\n@")
        (problem,) = self.check(text).problems
        self.assertEqual(str(problem), "mirage:4:2: unbalanced parentheses: ')' without '('")
        self.assertEqual(problem.hint, "the '(' on line 3 is inside a ';' comment, which hides it")

    def test_names_that_repeat_the_zone_are_errors(self) -> None:
        result = self.check(zone(extra='mail\tMX\t10\tmx.mirage\nwww.mirage\tTXT\t"x"\n'))
        self.assertEqual(
            [str(p) for p in result.problems],
            [
                "mirage:7:12: mx.mirage.mirage. (MX target) repeats the zone name mirage.",
                "mirage:8:1: www.mirage.mirage. (owner) repeats the zone name mirage.",
            ],
        )
        self.assertEqual(
            result.problems[0].hint,
            "end 'mx.mirage' with a dot: a name without one is relative to the origin and"
            " gets mirage. appended",
        )

    def test_names_that_look_absolute_warn(self) -> None:
        result = self.check(zone(extra="ftp\tCNAME\tftp.example.org\nx\tNS\tns.example.net\n"))
        self.assertEqual(
            [str(p) for p in result.problems],
            [
                "mirage:7:11: warning: ftp.example.org.mirage. (CNAME target) looks like a"
                " name outside the zone with mirage. appended",
                "mirage:8:6: warning: name server ns.example.net.mirage. of x.mirage. has"
                " no address (A or AAAA) in the zone",
            ],
        )
        self.assertEqual(
            result.problems[1].hint,
            "if 'ns.example.net' was meant to be absolute, end it with a dot",
        )
        # Sub-domains named like country codes or new top-level domains are common.
        self.assertEqual(self.check(zone(extra="api.dev\tCNAME\twww.eu\n")).problems, [])

    def test_targets_need_addresses(self) -> None:
        extra = (
            "@\tMX\t10\tmail\n"  # no address
            "@\tMX\t20\tmx.example.net.\n"  # not ours
            "@\tMX\t0\t.\n"  # null MX
            "_x._tcp\tSRV\t0\t0\t0\t.\n"  # no service
            "_y._tcp\tSRV\t0\t0\t1\tw.wild\n"  # a wildcard gives it an address
            "*.wild\tAAAA\t::1\n"
            "alias\tCNAME\twww\n"
            "@\tNS\talias\n"  # an alias
        )
        result = self.check(zone(extra=extra))
        self.assertEqual(
            [str(p) for p in result.problems],
            [
                "mirage:7:9: warning: mail exchanger mail.mirage. of mirage. has no address"
                " (A or AAAA) in the zone",
                "mirage:14:6: warning: name server alias.mirage. of mirage. is an alias (CNAME);"
                " it must name a host with addresses (RFC 2181 section 10.3)",
            ],
        )

    def test_data_below_a_delegation(self) -> None:
        extra = "sub\tNS\tns.sub\nns.sub\tA\t192.0.2.1\nsub\tDS\t1 8 2 " + "ab" * 32 + "\n"
        self.assertEqual(self.check(zone(extra=extra)).problems, [])
        result = self.check(zone(extra=extra + "mail.sub\tMX\t1\tns.sub\n"))
        self.assertEqual(
            [str(p) for p in result.problems],
            [
                "mirage:10:10: warning: mail.sub.mirage. MX is at or below the delegation"
                " sub.mirage. (NS records), so it is not served; only glue addresses of"
                " name servers are"
            ],
        )

    def test_records_outside_the_zone(self) -> None:
        extra = "@\tNS\tns.example.net.\nns.example.net.\tA\t192.0.2.1\nx.example.\tA\t192.0.2.2\n"
        result = self.check(zone(extra=extra))
        self.assertEqual(
            [str(p) for p in result.problems],
            ["mirage:9: warning: x.example. is outside the zone mirage.; the record is ignored"],
        )
        self.assertFalse(result.errors)

    def test_ttls_out_of_range(self) -> None:
        result = self.check(
            zone(extra="big\t2147483648\tA\t192.0.2.1\nok\t2147483647\tA\t1.2.3.4\n")
        )
        self.assertEqual(
            [str(p) for p in result.problems],
            [
                "mirage:7:5: TTL 2147483648 of big.mirage. A is above 2147483647, so resolvers"
                " read it as 0 (RFC 2181 section 8)"
            ],
        )
        result = self.check(zone().replace("\t3600\n@", "\t2147483648\n@"))
        self.assertEqual(
            [str(p) for p in result.problems],
            ["mirage:3:43: SOA minimum 2147483648 is above 2147483647"],
        )

    def test_soa_and_ns_at_the_apex(self) -> None:
        (problem,) = self.check("$TTL 60\nwww A 192.0.2.1\n").problems
        self.assertEqual(str(problem), "mirage: no SOA record at the zone apex mirage.")
        (problem,) = self.check(zone().replace("@\tNS\tns1\n", "")).problems
        self.assertEqual(str(problem), "mirage: no NS records at the zone apex mirage.")
        (problem,) = self.check(zone(extra="@ SOA ns1 hostmaster 2 1 1 1 1\n")).problems
        self.assertEqual(problem.line, 7)
        self.assertIn("has a second SOA record", problem.message)

    def test_a_zone_file_for_another_zone(self) -> None:
        (problem,) = check.check_zone(zone(), "example", None).problems
        self.assertEqual(problem.message, "no SOA record at the zone apex example.")
        self.assertEqual(
            problem.hint,
            "$ORIGIN mirage. on line 1 puts the records outside the zone example. (the zone"
            " name comes from the file name, or --zone)",
        )

    def test_not_utf8(self) -> None:
        (problem,) = check.check_zone(b"$TTL 1\n\xff\n", "mirage").problems
        self.assertEqual(str(problem), "mirage:2: not UTF-8 text (invalid start byte)")

    def test_crlf_and_parentheses_keep_places(self) -> None:
        text = zone(extra="mail\tMX\t10\tmx\n").replace("\n", "\r\n")
        text = text.replace("hostmaster\t1\t", "hostmaster (\r\n\t1 ; serial\r\n\t")
        text = text.replace("\t3600\r\n@", "\t3600 )\r\n@")
        (problem,) = self.check(text).problems
        self.assertEqual(problem.line, 9)  # two lines more than without the parentheses


class ChangeTests(SynchronousTestCase):
    def change(self, old: str, new: str) -> check.FileResult:
        return check.check_zone(new, "mirage", MIRAGE, old=old)

    def test_changed_without_a_new_serial(self) -> None:
        result = self.change(zone(5), zone(5, www="2.2.2.2"))
        self.assertEqual(
            lines(result),
            [
                "mirage:3:22: the zone changed but its serial 5 did not increase (previous"
                " serial 5)\n  hint: increase the serial in the SOA record, e.g. to 6"
                " (secondaries copy a zone only when its serial increases)"
            ],
        )
        self.assertEqual(result.added, ["www.mirage. 3600 IN A 2.2.2.2"])
        self.assertEqual(result.removed, ["www.mirage. 3600 IN A 1.1.1.1"])

    def test_serials_compare_by_rfc_1982(self) -> None:
        for old, new, fine in [
            (1, 2, True),
            (2, 1, False),
            (4294967295, 0, True),  # wraps around
            (4294967295, 5, True),
            (1, 2147483648, True),
            (1, 2147483649, False),  # exactly half way: undefined, not greater
            (7, 7, False),
        ]:
            result = self.change(zone(old), zone(new, www="2.2.2.2"))
            self.assertEqual(not result.errors, fine, (old, new))

    def test_same_records_need_no_new_serial(self) -> None:
        result = self.change(zone(3), "; a comment\n" + zone(3).replace("\t", "  "))
        self.assertEqual(result.problems, [])
        self.assertEqual(
            result.summary(), "mirage: ok (zone mirage., serial 3, 4 records, unchanged)"
        )

    def test_ttl_changes_are_changes(self) -> None:
        result = self.change(zone(3), zone(3).replace("$TTL 3600", "$TTL 600"))
        self.assertEqual(len(result.errors), 1)

    def test_added_and_removed_zones(self) -> None:
        added = self.change("", zone())
        self.assertEqual(added.status, "added")
        self.assertEqual(added.summary(), "mirage: ok (new zone mirage., serial 1, 4 records)")
        removed = self.change(zone(), "")
        self.assertEqual((removed.status, removed.problems), ("removed", []))
        self.assertEqual(removed.summary(), "mirage: zone mirage. removed")
        # A new zone is still checked.
        self.assertTrue(self.change("", zone().replace("@\tNS\tns1\n", "")).errors)

    def test_a_broken_old_version_is_not_compared(self) -> None:
        result = self.change("garbage here\n", zone(1))
        self.assertEqual(result.problems, [])
        self.assertIsNone(result.old_serial)

    def test_the_diff_in_dns_order(self) -> None:
        result = self.change(zone(1, extra='a\tTXT\t"x"\n'), zone(2, www="2.2.2.2"))
        self.assertEqual(
            result.diff(),
            [
                "-mirage. 3600 IN SOA ns1.mirage. hostmaster.mirage. 1 86400 7200 1048576 3600",
                "+mirage. 3600 IN SOA ns1.mirage. hostmaster.mirage. 2 86400 7200 1048576 3600",
                '-a.mirage. 3600 IN TXT "x"',
                "-www.mirage. 3600 IN A 1.1.1.1",
                "+www.mirage. 3600 IN A 2.2.2.2",
            ],
        )


def keys_line(name: str, secret: str = SECRET, algorithm: int = 163) -> str:
    return f"{name} DNSKEY 0 3 {algorithm} {secret}\n"


class KeyFileTests(SynchronousTestCase):
    def test_good_and_bad_keys(self) -> None:
        text = (
            keys_line("personal._update.mirage.")
            + keys_line("old._update.mirage.", algorithm=157)
            + keys_line("x._transfer.example.")
            + keys_line("plain.mirage.")
            + "www.mirage. A 1.2.3.4\n"
        )
        (result,) = check.check_keys({"mirage._keys": text.encode()})
        self.assertEqual(
            [str(p) for p in result.problems],
            [
                "mirage._keys:2: algorithm 157 (HMAC-MD5) is refused for TSIG; ignored",
                "mirage._keys:3: x._transfer.example. is outside mirage., the domain of this"
                " key file; ignored",
                "mirage._keys:4: warning: plain.mirage. has no _update, _transfer or _notify"
                " label: it grants nothing",
                "mirage._keys:5: A record ignored: key files hold only DNSKEY records",
            ],
        )
        self.assertEqual(result.summary(), "mirage._keys: 3 errors, 1 warning (2 keys)")
        self.assertNotIn(SECRET, check.Report([result]).text())

    def test_a_name_with_two_keys_in_two_files(self) -> None:
        files = {
            "_keys": keys_line("a._update.mirage.").encode(),
            "mirage._keys": keys_line("a._update.mirage.", OTHER).encode(),
        }
        results = check.check_keys(files, only=["mirage._keys"])
        self.assertEqual(
            [str(p) for r in results for p in r.problems],
            [
                "mirage._keys:1: a._update.mirage. has more than one DNSKEY (also _keys:1);"
                " all its keys are ignored"
            ],
        )

    def test_keys_added_removed_and_changed_name_no_secret(self) -> None:
        old = {
            "mirage._keys": (
                keys_line("a._update.mirage.") + keys_line("b._notify.mirage.")
            ).encode()
        }
        new = {
            "mirage._keys": (
                keys_line("a._update.mirage.", OTHER) + keys_line("c._transfer.mirage.")
            ).encode()
        }
        (result,) = check.check_keys(new, old=old)
        self.assertEqual(
            result.diff(),
            ["-b._notify.mirage.", "+c._transfer.mirage.", "+a._update.mirage. (new secret)"],
        )
        text = json.dumps(check.Report([result]).to_json()) + check.Report([result]).text(diff=True)
        self.assertNotIn(SECRET, text)
        self.assertNotIn(OTHER, text)

    def test_a_key_file_through_check_file(self) -> None:
        result = check.check_file(
            "/some/where/mirage._keys", keys_line("a._update.mirage.").encode()
        )
        self.assertEqual(result.summary(), "/some/where/mirage._keys: ok (1 key)")
        bad = check.check_file("dir/_keys", b"x._update. DNSKEY 0 3 163 !!!\n")
        self.assertEqual(
            [str(p) for p in bad.problems], ["dir/_keys:1: key material is not valid base64"]
        )


class TreeTests(SynchronousTestCase):
    def test_every_root_file(self) -> None:
        files = {
            "mirage": zone().encode(),
            "mirage._keys": keys_line("a._update.mirage.").encode(),
            "broken": b"$TTL 1\n@ SOA x\n",
            ".gitignore": b"*.swp\n",
        }
        report = check.check_tree(files)
        self.assertEqual([r.file for r in report.files], ["broken", "mirage", "mirage._keys"])
        self.assertEqual(report.exit_code, 1)

    def test_only_changed_files_against_their_old_versions(self) -> None:
        old = {"mirage": zone(1).encode(), "other": zone(1).replace("mirage.", "other.").encode()}
        new = {
            "mirage": zone(1, www="2.2.2.2").encode(),
            "other": old["other"],
            "new": zone().replace("mirage.", "new.").encode(),
        }
        report = check.check_tree(new, old)
        self.assertEqual(
            [(r.file, r.status) for r in report.files], [("mirage", "ok"), ("new", "added")]
        )
        self.assertEqual(
            [p.message[:35] for p in report.problems], ["the zone changed but its serial 1 d"]
        )
        report = check.check_tree({}, old)
        self.assertEqual(
            [r.summary() for r in report.files],
            ["mirage: zone mirage. removed", "other: zone other. removed"],
        )
        self.assertEqual(report.exit_code, 0)

    def test_zones_to_notify(self) -> None:
        old = {"mirage": b"1", "other": b"1", "mirage._keys": b"k", "_keys": b"k"}
        self.assertEqual(
            check.zones_to_notify(old, {**old, "mirage": b"2", "gone": b""}), ["gone.", "mirage."]
        )
        self.assertEqual(
            check.zones_to_notify(old, {k: v for k, v in old.items() if k != "other"}), ["other."]
        )
        self.assertEqual(check.zones_to_notify(old, {**old, "mirage._keys": b"j"}), ["mirage."])
        self.assertEqual(check.zones_to_notify(old, {**old, "_keys": b"j"}), ["mirage."])
        self.assertEqual(check.zones_to_notify(old, {**old, "README": b"x"}), ["README."])
        self.assertEqual(check.zones_to_notify(old, old), [])

    def test_json(self) -> None:
        report = check.Report([check.check_zone(zone(extra="x\tA\t1.2.3\n"), "mirage", MIRAGE)])
        data = report.to_json()
        self.assertEqual(data["ok"], False)
        (problem,) = data["files"][0]["problems"]
        self.assertEqual(
            problem,
            {
                "file": "mirage",
                "line": 7,
                "column": 5,
                "severity": "error",
                "message": "bad IPv4 address '1.2.3'",
                "hint": None,
            },
        )


def commit(repo: pygit2.Repository, files: dict[str, bytes]) -> str:
    """A commit of these root files (and a subdirectory and a symlink, never zones)."""
    builder = repo.TreeBuilder()
    for name, data in files.items():
        builder.insert(name, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    sub = repo.TreeBuilder()
    sub.insert("ignored", repo.create_blob(b"x"), pygit2.GIT_FILEMODE_BLOB)
    builder.insert("dir", sub.write(), pygit2.GIT_FILEMODE_TREE)
    builder.insert("link", repo.create_blob(b"mirage"), pygit2.GIT_FILEMODE_LINK)
    author = pygit2.Signature("t", "t@example.invalid")
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", author, author, "c", builder.write(), parents))


class GitTests(SynchronousTestCase):
    def repository(self, bare: bool = False) -> pygit2.Repository:
        return pygit2.init_repository(self.mktemp(), bare=bare)

    def commit(self, repo: pygit2.Repository, files: dict[str, bytes]) -> str:
        return commit(repo, files)

    def test_tree_files_are_the_root_regular_files(self) -> None:
        repo = self.repository(bare=True)
        first = self.commit(repo, {"mirage": b"1"})
        self.commit(repo, {"mirage": b"2", "other": b"3"})
        self.assertEqual(check.tree_files(repo, "HEAD"), {"mirage": b"2", "other": b"3"})
        self.assertEqual(check.tree_files(repo, first), {"mirage": b"1"})
        self.assertEqual(check.tree_files(repo, "0" * 40), {})
        with self.assertRaises(ValueError):
            check.tree_files(repo, "nosuchbranch")

    def test_staged_files(self) -> None:
        repo = self.repository()
        self.assertEqual(check.head_files(repo), {})
        Path(repo.workdir, "mirage").write_bytes(b"staged")
        Path(repo.workdir, "sub").mkdir()
        Path(repo.workdir, "sub", "x").write_bytes(b"x")
        repo.index.add("mirage")
        repo.index.add("sub/x")
        repo.index.write()
        self.assertEqual(check.staged_files(repo), {"mirage": b"staged"})

    def test_hook_scripts_call_gitdns_by_its_absolute_path(self) -> None:
        script = check.hook_script("pre-receive", "/opt/git dns/bin/gitdns")
        self.assertIn("GITDNS='/opt/git dns/bin/gitdns'", script)
        self.assertIn('"$GITDNS" check --repo . --rev "$new" --old-rev "$old"', script)
        self.assertIn(check.HOOK_MARK, check.hook_script("post-receive", "/x"))
        self.assertIn("exec /x check --repo . --staged", check.hook_script("pre-commit", "/x"))

    def test_install_keeps_foreign_hooks(self) -> None:
        repo = self.repository(bare=True)
        (path,) = check.install_hooks(repo, ["pre-receive"], "/x/gitdns")
        self.assertEqual(path, os.path.join(repo.path, "hooks", "pre-receive"))
        self.assertTrue(os.access(path, os.X_OK))
        check.install_hooks(repo, ["pre-receive"], "/y/gitdns")  # ours: replaced
        self.assertIn("/y/gitdns", Path(path).read_text())
        Path(path).write_text("#!/bin/sh\nexit 0\n")
        with self.assertRaises(ValueError):
            check.install_hooks(repo, ["pre-receive"], "/x/gitdns")
        check.install_hooks(repo, ["pre-receive"], "/x/gitdns", force=True)
        self.assertIn(check.HOOK_MARK, Path(path).read_text())

    def test_hooks_path(self) -> None:
        repo = self.repository()
        repo.config["core.hooksPath"] = "githooks"
        self.assertEqual(check.hooks_directory(repo), os.path.join(repo.workdir, "githooks"))


class CommandTests(SynchronousTestCase):
    def write(self, name: str, text: str | bytes) -> str:
        directory = Path(self.mktemp())
        directory.mkdir(exist_ok=True)
        path = directory / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return str(path)

    def test_exit_status(self) -> None:
        good = self.write("mirage", zone())
        warned = self.write("mirage", zone(extra="@\tMX\t1\tmail\n"))
        bad = self.write("mirage", zone(extra="x\tA\t1.2.3\n"))
        self.assertEqual(
            run("check", good)[:2],
            (0, "mirage: ok (zone mirage., serial 1, 4 records)\n".replace("mirage:", good + ":")),
        )
        status, out, _ = run("check", warned)
        self.assertEqual(status, 0)
        self.assertIn(": warning: mail exchanger mail.mirage.", out)
        self.assertEqual(run("check", bad)[0], 1)
        for argv in (
            ["check"],
            ["check", good, "--repo", "."],
            ["check", good, "--rev", "HEAD"],
            ["check", "/nonexistent/mirage"],
            ["check", good, "--zone", "bad..name"],
            ["check", good, "--format", "xml"],
            ["check", self.write("a..b", zone())],
        ):
            self.assertEqual(run(*argv)[0], 2, argv)

    def test_old_and_diff(self) -> None:
        old = self.write("mirage", zone(1))
        new = self.write("mirage", zone(1, www="2.2.2.2"))
        status, out, _ = run("check", new, "--old", old)
        self.assertEqual(status, 1)
        self.assertIn(":3:22: the zone changed but its serial 1 did not increase", out)
        fixed = self.write("mirage", zone(2, www="2.2.2.2"))
        status, out, _ = run("check", "--diff", old, fixed)
        self.assertEqual(status, 0)
        self.assertEqual(
            out.splitlines()[1:],
            [
                "-mirage. 3600 IN SOA ns1.mirage. hostmaster.mirage. 1 86400 7200 1048576 3600",
                "+mirage. 3600 IN SOA ns1.mirage. hostmaster.mirage. 2 86400 7200 1048576 3600",
                "-www.mirage. 3600 IN A 1.1.1.1",
                "+www.mirage. 3600 IN A 2.2.2.2",
            ],
        )
        empty = self.write("mirage", "")
        self.assertIn("zone mirage. removed", run("check", empty, "--old", old)[1])
        self.assertIn("new zone mirage.", run("check", old, "--old", empty)[1])

    def test_json_format(self) -> None:
        path = self.write("example.org", zone())
        status, out, _ = run("check", "--format", "json", "--zone", "mirage", path)
        self.assertEqual(status, 0)
        self.assertEqual(json.loads(out)["files"][0]["serial"], 1)

    def test_repository(self) -> None:
        path = self.mktemp()
        repo = pygit2.init_repository(path, bare=True)
        first = commit(
            repo,
            {"mirage": zone(1).encode(), "mirage._keys": keys_line("a._update.mirage.").encode()},
        )
        second = commit(
            repo,
            {
                "mirage": zone(1, www="2.2.2.2").encode(),
                "mirage._keys": keys_line("a._update.mirage.").encode(),
            },
        )
        status, out, _ = run("check", "--repo", path, "--rev", first)
        self.assertEqual(
            (status, out),
            (0, "mirage: ok (zone mirage., serial 1, 4 records)\nmirage._keys: ok (1 key)\n"),
        )
        status, out, _ = run("check", "--repo", path, "--rev", second, "--old-rev", first)
        self.assertEqual(status, 1)
        self.assertTrue(out.startswith("mirage:3:22: the zone changed but its serial 1"))
        self.assertNotIn("mirage._keys", out)  # unchanged: not checked again
        status, out, _ = run("check", "--repo", path, "--rev", second, "--old-rev", "0" * 40)
        self.assertEqual(
            (status, out.splitlines()[0]), (0, "mirage: ok (new zone mirage., serial 1, 4 records)")
        )
        self.assertEqual(
            run("check", "--repo", path, "--rev", "0" * 40, "--old-rev", first), (0, "", "")
        )
        self.assertEqual(run("check", "--repo", path, "--rev", "nosuchrev")[0], 2)
        self.assertEqual(run("check", "--repo", self.mktemp())[0], 2)
        self.assertEqual(run("check", "--repo", path, "--staged", "--rev", "HEAD")[0], 2)
        self.assertEqual(
            run("hook", "changed-zones", "--repo", path, first, second), (0, "mirage.\n", "")
        )
        self.assertEqual(
            run("hook", "changed-zones", "--repo", path, "0" * 40, first)[1], "mirage.\n"
        )
