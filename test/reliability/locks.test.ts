/**
 * Step locks (issue 17, items 2 and 3), with real processes: a run waiting for a lock stops at once on
 * Ctrl-C or SIGTERM; a lock whose owner died (kill -9 on this host; another host's lock past its
 * lease) is taken over; a full disk (a real tmpfs) leaves no lock behind; an unreadable lock names
 * its path and how to clear it.
 * Cost: 18 sardine processes, a few seconds each on a quiet 2-core machine, plus a 10 s lease.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { mkdir, readdir, rm, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { nodeCommand } from "../support/run-process.ts"
import { cli, fileStudyIn, minutes, waitForOutput, waitUntil } from "./file-study.ts"

const inputsOfTrain = ["--only", "full-unet/latents,full-unet/text"]
const ownerOf = (lock: string) => JSON.parse(readFileSync(join(lock, "owner.json"), "utf8")) as { pid: number; host: string }

describe("step locks", () => {
  it("Ctrl-C and SIGTERM stop a run waiting for a step lock at once (exit 130 and 143); the holder goes on", async () => {
    const s = await fileStudyIn("lock-wait", 5000)
    expect((await s.sardine(["run", s.file, ...inputsOfTrain])).code).toBe(0)
    const lock = join(s.cache, "locks", s.keyOf("full-unet/train"))
    const holder = s.startSardine(["step", s.file, "full-unet/train"], { env: { FILE_STEPS_DELAY_MS: "20" } })
    await waitForOutput(holder, "start  train", "the holder's training")
    const waiting = `waiting for full-unet/train: locked by pid ${holder.child.pid} on ${hostname()}`
    const byRun = s.startSardine(["run", s.file, "--only", "full-unet/train"])
    const byStep = s.startSardine(["step", s.file, "full-unet/train"])
    await Promise.all([waitForOutput(byRun, waiting, "run to wait"), waitForOutput(byStep, waiting, "step to wait")])

    byRun.child.kill("SIGTERM")
    byStep.child.kill("SIGINT")
    const [terminated, interrupted] = await Promise.all([byRun.done, byStep.done])
    expect(terminated.code).toBe(143)
    expect(interrupted.code).toBe(130)
    for (const stopped of [terminated, interrupted]) expect(stopped.stderr).toContain("interrupted: finished steps are kept")
    // They stopped while the lock was still held: they did not wait for it, and left it to its owner.
    expect(holder.child.exitCode).toBeNull()
    expect(ownerOf(lock).pid).toBe(holder.child.pid)
    expect(existsSync(join(s.cache, "steps", s.keyOf("full-unet/train")))).toBe(false)

    holder.child.kill("SIGTERM")
    expect((await holder.done).code).toBe(143)
    expect(existsSync(lock)).toBe(false)
  }, minutes(5))

  it("the lock of a killed process is taken over with a log line; status shows the training resumable from its checkpoint", async () => {
    const s = await fileStudyIn("dead-owner", 5000)
    expect((await s.sardine(["run", s.file, ...inputsOfTrain])).code).toBe(0)
    const key = s.keyOf("full-unet/train")
    const lock = join(s.cache, "locks", key)
    const checkpoint = join(s.cache, "partial", key, "checkpoints", "latest.json")
    const victim = s.startSardine(["step", s.file, "full-unet/train"], { env: { FILE_STEPS_DELAY_MS: "20" } })
    await waitUntil(() => existsSync(checkpoint), "the first checkpoint")
    victim.child.kill("SIGKILL")
    await victim.done
    // What kill -9 leaves: the lock of a process that is gone, and a checkpoint.
    expect(ownerOf(lock).pid).toBe(victim.child.pid)
    const at = (JSON.parse(readFileSync(checkpoint, "utf8")) as { step: number }).step

    const status = await s.sardine(["status", s.file])
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(new RegExp(`train\\s+full-unet/train\\s+resumable from step ${at}\\n`))
    expect(status.stdout).toMatch(/\d+ cached, 1 resumable, \d+ pending/)

    const rerun = await s.sardine(["step", s.file, "full-unet/train"])
    expect(rerun.code).toBe(0)
    expect(rerun.stderr).toContain(`taking over the lock ${lock} of pid ${victim.child.pid} on ${hostname()} since `)
    expect(rerun.stderr).toContain(`: pid ${victim.child.pid} is gone`)
    expect(rerun.stderr).toContain(`resuming at iteration ${at}`)
    expect(existsSync(lock)).toBe(false)
  }, minutes(5))

  it("a second signal during a slow cleanup quits at once with a message; the next run takes the lock it left over", async () => {
    const s = await fileStudyIn("second-signal", 5000)
    expect((await s.sardine(["run", s.file, ...inputsOfTrain])).code).toBe(0)
    const lock = join(s.cache, "locks", s.keyOf("full-unet/train"))
    // Once interrupted, this training takes ten minutes to stop.
    const victim = s.startSardine(["step", s.file, "full-unet/train"], { env: { FILE_STEPS_DELAY_MS: "20", FILE_STEPS_SLOW_STOP_MS: "600000" } })
    await waitForOutput(victim, "start  train", "the training")
    victim.child.kill("SIGINT")
    await waitForOutput(victim, "SIGINT: stopping (send it again to quit at once)", "the first signal's message")
    victim.child.kill("SIGTERM")
    const quit = await victim.done
    expect(quit.code).toBe(130)
    expect(quit.stderr).toContain("SIGTERM again: quitting without cleaning up; locks this process held are taken over by the next run")
    expect(ownerOf(lock).pid).toBe(victim.child.pid)
    expect(existsSync(join(s.cache, "steps", s.keyOf("full-unet/train")))).toBe(false)

    const rerun = await s.sardine(["step", s.file, "full-unet/train"])
    expect(rerun.code).toBe(0)
    expect(rerun.stderr).toContain(`: pid ${victim.child.pid} is gone`)
  }, minutes(5))

  it("another host's lock is waited for while its heartbeat goes on, and taken over once silent for longer than its lease", async () => {
    const s = await fileStudyIn("lease", 5000)
    expect((await s.sardine(["run", s.file, ...inputsOfTrain])).code).toBe(0)
    // A real second host name: the holder runs in its own UTS namespace, named node-b.
    const onNodeB = ["unshare", "--user", "--map-root-user", "--uts", "sh", "-c", "hostname node-b && exec \"$@\"", "sh"]
    const holder = s.startSardine(["step", s.file, "full-unet/train", "--lock-lease", "10"], {
      env: { FILE_STEPS_DELAY_MS: "20" },
      wrapper: onNodeB
    })
    await waitForOutput(holder, "start  train", "the holder on node-b")
    const waiter = s.startSardine(["step", s.file, "full-unet/train"])
    await waitForOutput(waiter, `waiting for full-unet/train: locked by pid ${holder.child.pid} on node-b`, "the wait")
    holder.child.kill("SIGKILL")
    await holder.done
    const result = await waiter.done
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(
      new RegExp(
        `taking over the lock .* of pid ${holder.child.pid} on node-b since \\S+: no heartbeat for \\d+ s, longer than its lease of 10 s`
      )
    )
    expect(result.stderr).toMatch(/resuming at iteration \d+/)
    expect(result.stdout).toContain("full-unet/train: ran")
  }, minutes(5))

  it("a full disk (a real 2 MiB tmpfs) leaves no lock behind; once space is freed the next run goes through", async () => {
    const s = await fileStudyIn("full-disk")
    await mkdir(join(s.cache, "locks"), { recursive: true })
    // Inside a mount namespace: a tmpfs on the cache's lock folder, filled up, then the run; then space freed and
    // the run again. Only the locks' disk is full: the tracking spool, written first, lives elsewhere in the cache.
    const script = [
      "cache=$1; shift",
      "mount -t tmpfs -o size=2m tmpfs \"$cache/locks\" || exit 90",
      "dd if=/dev/zero of=\"$cache/locks/filler\" bs=64k 2>/dev/null",
      "\"$@\"; echo \"first exit $?\"",
      "echo \"locks: $(find \"$cache/locks\" -mindepth 1 ! -name filler | wc -l), outputs: $(find \"$cache/steps\" -name sardine-step.json 2>/dev/null | wc -l)\"",
      "rm \"$cache/locks/filler\"",
      "\"$@\"; echo \"second exit $?\"",
      "echo \"locks: $(find \"$cache/locks\" -mindepth 1 | wc -l), outputs: $(find \"$cache/steps\" -name sardine-step.json | wc -l)\""
    ].join("\n")
    const command = nodeCommand(cli, ["run", s.file, "--cache-dir", s.cache, "--tracking-uri", join(s.dir, "mlruns")])
    const result = spawnSync("unshare", ["--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", s.cache, ...command], {
      encoding: "utf8",
      env: { ...process.env, CI: "true" }
    })
    const output = `${result.stdout}\n${result.stderr}`
    expect(result.status, output).toBe(0)
    expect(result.stdout).toContain("first exit 1")
    expect(result.stderr).toMatch(/full-unet\/reference: failed — .*locks\/\w+: cannot take the step lock: .*no space left on device/)
    expect(result.stdout).toContain("locks: 0, outputs: 0")
    expect(result.stdout).toContain("second exit 0")
    expect(result.stdout).toContain(`locks: 0, outputs: ${s.plan.steps.length}`)
  }, minutes(5))

  it("an unreadable lock (what a full disk left before) is reported with its path and the command that clears it", async () => {
    const s = await fileStudyIn("unreadable-lock")
    const lock = join(s.cache, "locks", s.keyOf("full-unet/reference"))
    await mkdir(lock, { recursive: true })
    await writeFile(join(lock, "owner.json"), "")
    const refused = await s.sardine(["run", s.file])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(
      `full-unet/reference: failed — step lock ${lock} is unreadable (owner.json is not a lock owner: ""). ` +
        `If no sardine process is running this step, remove it: rm -r '${lock}'`
    )
    expect(await readdir(join(s.cache, "locks"))).toEqual([s.keyOf("full-unet/reference")])
    await rm(lock, { recursive: true })
    const cleared = await s.sardine(["run", s.file])
    expect(cleared.code).toBe(0)
  }, minutes(5))
})
