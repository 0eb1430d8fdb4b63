#!/usr/bin/env python3
"""Prove the Python and Java bindings: the same app, synthesized from three languages, gives the same template.

Run by `npx projen bindings:test`, which the build's package step spawns after `package-all` has written
dist/js (npm tarball), dist/python (wheel) and dist/java (jar). Standard library only. Steps:

0. names    no member or parameter of the API is a Python or Java keyword (jsii would rename it there:
            `lambda_`), since the compile silences jsii's reserved-word warning for Go's `map`;
   readme   each Python and Java block of README.md is an excerpt of the example app in that language;
1. assets   every file under the npm tarball's package/assets/ (the bundled Lambda handlers) is in the jsii
            bundle that the wheel and the jar carry, byte for byte;
2. ts       synthesize each example app (APPS: examples/bindings, the platform team's cache, and
            examples/application-team, another app that imports it by attributes) in TypeScript, with the command
            its cdk.json gives `cdk synth`;
3. python   a fresh virtualenv, the wheel plus aws-cdk-lib and constructs pinned at the library's floor
            (examples/bindings/python/requirements.txt, from PyPI through the wheelhouse), then synthesize
            each app's python/;
4. java     install the jar into the local Maven repository, build each app's java/ against it and the
            pinned aws-cdk-lib, then synthesize it;
5. compare  per app, the three templates, after dropping metadata (CDKMetadata, resource Metadata) and blanking
            asset hashes, must be identical; so must the annotations and the file assets. A difference fails the
            run with a unified diff.

Downloads are kept between runs: Maven's in ~/.m2, pip's in a wheelhouse under ~/.cache (pip's own HTTP cache
keeps nothing when the index sends no caching headers). Each synth is timed, and
the peak resident memory of its whole process tree (the app plus the jsii kernel it starts) is sampled.
Options: --languages typescript,python,java (a subset skips the others and the comparison with them),
--json FILE writes the figures (default .bindings/report.json).
"""
import argparse
import difflib
import hashlib
import io
import json
import keyword
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / 'examples' / 'bindings'
WORK = ROOT / '.bindings'
# Each example app (its folder under examples/, with typescript/, python/ and java/) and the stack it synthesizes.
APPS = {
    'bindings': 'EcrPullThroughCacheBindings',
    'application-team': 'ApplicationTeam',
}
LANGUAGES = ('typescript', 'python', 'java')
ASSETS_PREFIX = 'package/assets/'
# Pinned so every run uses the same plugin, whatever Maven's defaults are.
MAVEN_INSTALL_PLUGIN = 'org.apache.maven.plugins:maven-install-plugin:3.1.4'
TIMEOUT_S = 20 * 60
# Python downloads for the venv, kept between runs (and between clones) like ~/.m2 keeps Maven's.
WHEELHOUSE = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'cdk-ecr-pull-through-cache' / 'wheelhouse'
PAGE = os.sysconf('SC_PAGE_SIZE')


class Failure(Exception):
    pass


def log(msg=''):
    print(msg, flush=True)


def run(cmd, cwd=ROOT, env=None, quiet=False):
    """Run a command; on failure, show its output and stop."""
    shown = ' '.join(shlex.quote(str(c)) for c in cmd)
    log(f'$ {shown}' + (f'   (in {os.path.relpath(cwd, ROOT)})' if Path(cwd) != ROOT else ''))
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, timeout=TIMEOUT_S,
                          stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None,
                          text=True)
    if proc.returncode != 0:
        if quiet and proc.stdout:
            log(proc.stdout)
        raise Failure(f'command failed with exit code {proc.returncode}: {shown}')


# ---------------------------------------------------------------------------------------------------------
# measuring a process tree


def _descendants(pid):
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for tid in os.listdir(f'/proc/{p}/task'):
                with open(f'/proc/{p}/task/{tid}/children') as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass  # the process ended between two reads
    return found


def _rss(pid):
    try:
        with open(f'/proc/{pid}/statm') as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def measured(cmd, cwd, env):
    """Run a shell command line (as `cdk synth` runs an app); return (seconds, peak tree RSS, peak single RSS)."""
    log(f'$ {cmd}   (in {os.path.relpath(cwd, ROOT)})')
    peak = {'tree': 0, 'single': 0}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env)
    done = threading.Event()

    def sample():
        while not done.is_set():
            sizes = [_rss(p) for p in _descendants(proc.pid)]
            peak['tree'] = max(peak['tree'], sum(sizes))
            peak['single'] = max(peak['single'], max(sizes, default=0))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        done.set()
        sampler.join()
    seconds = time.perf_counter() - start
    if code != 0:
        raise Failure(f'synth failed with exit code {code}: {cmd}')
    return seconds, peak['tree'], peak['single']


# ---------------------------------------------------------------------------------------------------------
# names that Python or Java would have to rename

JAVA_KEYWORDS = frozenset("""abstract assert boolean break byte case catch char class const continue default do
    double else enum extends final finally float for goto if implements import instanceof int interface long native
    new package private protected public return short static strictfp super switch synchronized this throw throws
    transient try void volatile while true false null var record yield""".split())


def _snake(name):
    return re.sub(r'(?<=[a-z0-9])([A-Z])', r'_\1', name).lower()


def check_names():
    with open(ROOT / '.jsii') as f:
        assembly = json.load(f)
    clashes = []
    for fqn, t in sorted(assembly['types'].items()):
        members = [('property', p['name']) for p in t.get('properties', [])]
        callables = t.get('methods', []) + ([t['initializer']] if t.get('initializer') else [])
        for c in callables:
            if 'name' in c:
                members.append(('method', c['name']))
            members.extend(('parameter', p['name']) for p in c.get('parameters', []))
        for kind, name in members:
            for language, hit in (('Python', keyword.iskeyword(_snake(name))), ('Java', name in JAVA_KEYWORDS)):
                if hit:
                    clashes.append(f'{fqn}: {kind} `{name}` is a {language} keyword')
    if clashes:
        raise Failure('rename these (jsii would escape them, for example `lambda_`):\n  ' + '\n  '.join(clashes))
    log(f'{len(assembly["types"])} types: no member or parameter name is a Python or Java keyword')


# ---------------------------------------------------------------------------------------------------------
# README examples in Python and Java: excerpts of the example apps that this run synthesizes

EXCERPT_SOURCES = {
    'python': EXAMPLES / 'python' / 'app.py',
    'java': EXAMPLES / 'java' / 'src' / 'main' / 'java' / 'io' / 'github' / 'cdkecrptc' / 'examples' / 'BindingsApp.java',
}
ELISION = re.compile(r'^\s*(#|//)?\s*\.\.\.\s*$')


def _code_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip()]


def check_readme_excerpts():
    """Each ```python / ```java block of README.md, cut at `...` lines, appears piece by piece, in order, in the
    example app of that language (indentation and blank lines aside). The apps are then run, so the README's
    Python and Java are code that runs."""
    readme = (ROOT / 'README.md').read_text()
    checked = 0
    for language, source in EXCERPT_SOURCES.items():
        code = _code_lines(source.read_text())
        for block in re.findall(rf'^```{language}\n(.*?)^```', readme, re.M | re.S):
            pieces, piece = [], []
            for line in block.splitlines():
                if ELISION.match(line):
                    pieces.append(piece)
                    piece = []
                else:
                    piece.append(line)
            pieces.append(piece)
            at = 0
            for piece in (_code_lines('\n'.join(p)) for p in pieces):
                if not piece:
                    continue
                found = next((i for i in range(at, len(code) - len(piece) + 1) if code[i:i + len(piece)] == piece), None)
                if found is None:
                    raise Failure(f'README.md: this {language} excerpt is not (or no longer, or not in this order) in '
                                  f'{source.relative_to(ROOT)}; update one or the other:\n  ' + '\n  '.join(piece))
                at = found + len(piece)
            checked += 1
    log(f'{checked} Python and Java block(s) of README.md are excerpts of the example apps')


# ---------------------------------------------------------------------------------------------------------
# packages


def one(paths, what):
    paths = sorted(paths)
    if len(paths) != 1:
        raise Failure(f'expected exactly one {what}, found {len(paths)}: {[str(p) for p in paths]}. '
                      'Run `npx projen package-all` (or the whole `npx projen build`) first.')
    return paths[0]


def packages():
    tarball = one((ROOT / 'dist' / 'js').glob('*.tgz'), 'npm tarball in dist/js')
    wheel = one((ROOT / 'dist' / 'python').glob('*.whl'), 'wheel in dist/python')
    jar = one((p for p in (ROOT / 'dist' / 'java').rglob('*.jar')
               if not p.name.endswith(('-sources.jar', '-javadoc.jar'))), 'jar in dist/java')
    pom = one(jar.parent.glob('*.pom'), f'pom beside {jar.name}')
    return tarball, wheel, jar, pom


def _assets_of_tgz(data):
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(ASSETS_PREFIX):
                out[member.name[len(ASSETS_PREFIX):]] = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
    return out


def _bundle_in_zip(path):
    """The jsii bundle (the npm tarball that the jsii kernel loads) inside a wheel or a jar."""
    with zipfile.ZipFile(path) as z:
        name = one((n for n in z.namelist() if n.endswith('.jsii.tgz') or n.endswith('.tgz')),
                   f'jsii bundle (*.tgz) in {path.name}')
        return name, z.read(name)


def check_assets(tarball, wheel, jar):
    """Every file under package/assets/ of the npm tarball is in the wheel's and the jar's bundle, byte-identical."""
    npm = _assets_of_tgz(tarball.read_bytes())
    found = {'npm tarball': npm}
    for label, path in (('wheel', wheel), ('jar', jar)):
        name, data = _bundle_in_zip(path)
        same = 'the same bytes as' if data == tarball.read_bytes() else 'not byte-identical to'
        log(f'{label}: {path.name} carries {name}, {same} {tarball.name}')
        found[label] = _assets_of_tgz(data)
    problems = []
    for label in ('wheel', 'jar'):
        for asset, digest in sorted(npm.items()):
            if asset not in found[label]:
                problems.append(f'{ASSETS_PREFIX}{asset}: in the npm tarball, missing from the {label}')
            elif found[label][asset] != digest:
                problems.append(f'{ASSETS_PREFIX}{asset}: differs between the npm tarball and the {label}')
        for asset in sorted(set(found[label]) - set(npm)):
            problems.append(f'{ASSETS_PREFIX}{asset}: in the {label}, not in the npm tarball')
    if problems:
        raise Failure('Lambda assets differ between the packages:\n  ' + '\n  '.join(problems))
    if not npm:
        log(f'no Lambda assets: the npm tarball has nothing under {ASSETS_PREFIX}, so there is nothing to compare '
            '(this check passes and becomes meaningful once handlers are bundled)')
    else:
        for asset, digest in sorted(npm.items()):
            log(f'  {ASSETS_PREFIX}{asset}  sha256 {digest[:16]}...  identical in npm tarball, wheel and jar')
        log(f'{len(npm)} Lambda asset file(s) present and byte-identical in all three packages')
    return len(npm)


# ---------------------------------------------------------------------------------------------------------
# the three apps


def base_env():
    env = dict(os.environ)
    # offline and quiet: no instance metadata look-ups, no telemetry, no Node.js version banner from jsii
    env.update(AWS_EC2_METADATA_DISABLED='true', CDK_DISABLE_CLI_TELEMETRY='true')
    # no ANSI codes in logs: Debian's Maven 3.8 writes ESC[0m resets even with --batch-mode and -q
    env['MAVEN_OPTS'] = (env.get('MAVEN_OPTS', '') + ' -Dstyle.color=never -Djansi.noreset=true').strip()
    # the jsii kernel's banner about this Node.js major version (it takes a list of majors to keep quiet about)
    node_major = subprocess.run(['node', '-p', "process.versions.node.split('.')[0]"], capture_output=True,
                                text=True, check=True).stdout.strip()
    for banner in ('UNTESTED', 'DEPRECATED', 'END_OF_LIFE'):
        env[f'JSII_SILENCE_WARNING_{banner}_NODE_VERSION'] = node_major
    for var in ('CDK_CONTEXT_JSON', 'CDK_OUTDIR'):
        env.pop(var, None)
    return env


def app_folder(app, language):
    return ROOT / 'examples' / app / language


def app_command(app, language):
    with open(app_folder(app, language) / 'cdk.json') as f:
        return json.load(f)['app']


def out_dir(app, language):
    return WORK / 'cdk.out' / app / language


def synth(app, language, env):
    """Run the app as `cdk synth` does: the cdk.json app command, with CDK_OUTDIR set."""
    out = out_dir(app, language)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = dict(env, CDK_OUTDIR=str(out))
    seconds, tree, single = measured(app_command(app, language), app_folder(app, language), env)
    log(f'{app} {language}: synthesized in {seconds:.1f} s, peak RSS {tree / 2**20:.0f} MiB '
        f'(process tree; largest process {single / 2**20:.0f} MiB)')
    return {'seconds': round(seconds, 2), 'peakTreeRssMiB': round(tree / 2**20), 'peakProcessRssMiB': round(single / 2**20)}


def prepare_python(wheel):
    venv = WORK / 'venv'
    run([sys.executable, '-m', 'venv', '--clear', venv])
    pip = [venv / 'bin' / 'python', '-m', 'pip', '--disable-pip-version-check', '--no-input']
    requirements = EXAMPLES / 'python' / 'requirements.txt'
    # pip's own HTTP cache stores nothing when the index's responses carry no caching headers (this machine's
    # do not), so the downloaded wheels are kept in a wheelhouse: install from it alone, and download into it
    # only when it lacks something (first run, or a new pin or dependency).
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    offline = pip + ['install', '--quiet', '--no-index', '--find-links', WHEELHOUSE, wheel, '-r', requirements]
    log(f'$ {" ".join(str(c) for c in offline)}')
    if subprocess.run([str(c) for c in offline], capture_output=True, timeout=TIMEOUT_S).returncode != 0:
        log(f'the wheelhouse {WHEELHOUSE} lacks some of them: downloading')
        run(pip + ['download', '--quiet', '--dest', WHEELHOUSE, wheel, '-r', requirements])
        (WHEELHOUSE / wheel.name).unlink(missing_ok=True)  # the library itself always comes from dist/python
        run(offline)
    run(pip + ['check'], quiet=True)
    env = base_env()
    env['VIRTUAL_ENV'] = str(venv)
    env['PATH'] = f'{venv / "bin"}{os.pathsep}{env["PATH"]}'
    env.pop('PYTHONHOME', None)
    return env


def prepare_java(jar, pom):
    # Install the jar just built under its own coordinates (overwriting any earlier build of the same version),
    # then compile the example against it and the pinned aws-cdk-lib.
    WORK.mkdir(exist_ok=True)
    env = base_env()
    run(['mvn', '-q', '-B', f'{MAVEN_INSTALL_PLUGIN}:install-file', f'-Dfile={jar}', f'-DpomFile={pom}'], cwd=WORK,
        env=env)
    for app in APPS:
        run(['mvn', '-q', '-B', 'compile'], cwd=app_folder(app, 'java'), env=env)
    return env


# ---------------------------------------------------------------------------------------------------------
# comparing what they synthesized

HASH = re.compile(r'[0-9a-f]{64}')


def _blank_hashes(value):
    if isinstance(value, dict):
        return {HASH.sub('<asset-hash>', k): _blank_hashes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_hashes(v) for v in value]
    if isinstance(value, str):
        return HASH.sub('<asset-hash>', value)
    return value


def normalised_template(app, language):
    with open(out_dir(app, language) / f'{APPS[app]}.template.json') as f:
        template = json.load(f)
    resources = template.get('Resources', {})
    resources.pop('CDKMetadata', None)  # analytics: names the language and the jsii runtime
    for resource in resources.values():
        resource.pop('Metadata', None)  # aws:cdk:path, aws:asset:* (asset paths differ per cdk.out)
    conditions = template.get('Conditions', {})
    conditions.pop('CDKMetadataAvailable', None)
    if not conditions:
        template.pop('Conditions', None)
    return _blank_hashes(template)


def annotations(app, language):
    """Info, warning and error annotations (the Aspect's report), by construct path."""
    with open(out_dir(app, language) / 'manifest.json') as f:
        manifest = json.load(f)
    found = []
    for artifact in manifest.get('artifacts', {}).values():
        for path, entries in artifact.get('metadata', {}).items():
            for entry in entries:
                if entry.get('type') in ('aws:cdk:info', 'aws:cdk:warning', 'aws:cdk:error'):
                    found.append(f'{entry["type"]} {path}: {entry.get("data")}')
    return sorted(found)


def file_assets(app, language):
    """Source hashes of the file assets other than templates (Lambda code): these must match exactly."""
    with open(out_dir(app, language) / f'{APPS[app]}.assets.json') as f:
        manifest = json.load(f)
    return sorted(h for h, a in manifest.get('files', {}).items()
                  if not a.get('source', {}).get('path', '').endswith('.template.json'))


def _paths(a, b, names, path='', out=None):
    """Where two JSON values differ, as 'Resources.X.Properties.Y: a != b' lines."""
    out = [] if out is None else out
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            where = f'{path}.{key}' if path else key
            if key not in b:
                out.append(f'{where}: only in {names[0]}')
            elif key not in a:
                out.append(f'{where}: only in {names[1]}')
            else:
                _paths(a[key], b[key], names, where, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _paths(x, y, names, f'{path}[{i}]', out)
    elif a != b:
        out.append(f'{path}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}')
    return out


def _pretty(value):
    return json.dumps(value, indent=2, sort_keys=True).splitlines()


def compare(app, languages):
    reference = languages[0]
    views = {lang: {'template': normalised_template(app, lang), 'annotations': annotations(app, lang),
                    'file assets': file_assets(app, lang)} for lang in languages}
    differences = []
    for lang in languages[1:]:
        for part in ('template', 'annotations', 'file assets'):
            a, b = views[reference][part], views[lang][part]
            if a != b:
                diff = list(difflib.unified_diff(_pretty(a), _pretty(b), f'{reference} {part}', f'{lang} {part}',
                                                 lineterm='', n=4))
                shown = diff[:300] + ([f'... {len(diff) - 300} more diff lines'] if len(diff) > 300 else [])
                paths = _paths(a, b, (reference, lang))
                listed = [f'{reference} vs {lang}, {part}: {len(paths)} difference(s)'] + [f'  {p}' for p in paths[:30]]
                differences.append('\n'.join(listed + shown))
    if differences:
        raise Failure(f'the languages synthesized different {app} stacks:\n' + '\n\n'.join(differences))
    template = views[reference]['template']
    resources = template.get('Resources', {})
    kinds = {}
    for resource in resources.values():
        kinds[resource['Type']] = kinds.get(resource['Type'], 0) + 1
    log(f'{app}: identical in {", ".join(languages)}: {len(resources)} resources, '
        f'{len(template.get("Outputs", {}))} outputs, {len(views[reference]["annotations"])} annotations, '
        f'{len(views[reference]["file assets"])} file assets (raw hashes compared)')
    for kind, count in sorted(kinds.items()):
        log(f'  {count:3d}  {kind}')
    return {'resources': len(resources), 'outputs': len(template.get('Outputs', {}))}


# ---------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--languages', default=','.join(LANGUAGES))
    parser.add_argument('--json', default=str(WORK / 'report.json'), help='write the figures to this file')
    args = parser.parse_args()
    languages = [lang.strip() for lang in args.languages.split(',') if lang.strip()]
    unknown = set(languages) - set(LANGUAGES)
    if unknown or not languages:
        parser.error(f'--languages takes a subset of {",".join(LANGUAGES)}')
    languages = [lang for lang in LANGUAGES if lang in languages]

    started = time.perf_counter()
    steps, report = [], {'synth': {}}

    def step(name, fn, *a):
        log(f'\n== bindings: {name}')
        t = time.perf_counter()
        result = fn(*a)
        steps.append((name, time.perf_counter() - t))
        return result

    try:
        step('names in the API against Python and Java keywords', check_names)
        step('README examples in Python and Java against the example apps', check_readme_excerpts)
        tarball, wheel, jar, pom = packages()
        report['lambdaAssets'] = step('Lambda assets in the npm tarball, the wheel and the jar',
                                      check_assets, tarball, wheel, jar)
        env = {}
        if 'typescript' in languages:
            env['typescript'] = base_env()
        if 'python' in languages:
            env['python'] = step('python: fresh virtualenv with the wheel and the pinned CDK', prepare_python, wheel)
        if 'java' in languages:
            env['java'] = step('java: install the jar, build the example with Maven', prepare_java, jar, pom)
        report['compare'] = {}
        for app in APPS:
            for lang in languages:
                report['synth'][f'{app} {lang}'] = step(f'{app} {lang}: synthesize the example', synth, app, lang, env[lang])
            if len(languages) > 1:
                report['compare'][app] = step(f'{app}: compare the templates', compare, app, languages)
    except (Failure, subprocess.TimeoutExpired) as e:
        log(f'\nbindings: FAILED: {e}')
        return 1

    total = time.perf_counter() - started
    log('\n== bindings: summary')
    for name, seconds in steps:
        log(f'{seconds:7.1f} s  {name}')
    log(f'{total:7.1f} s  total')
    log(f'{"synth":27s} seconds   peak RSS, process tree   largest process')
    for lang, r in report['synth'].items():
        log(f'{lang:27s} {r["seconds"]:7.1f}   {r["peakTreeRssMiB"]:14d} MiB   {r["peakProcessRssMiB"]:11d} MiB')
    report['steps'] = {name: round(seconds, 1) for name, seconds in steps}
    report['totalSeconds'] = round(total, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
