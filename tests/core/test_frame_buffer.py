"""The frame buffer rebuilds the stacks the frame-stack wrapper emitted, with n-step targets,
and stores each frame once."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.frame_buffer import frame_buffer_add, frame_buffer_init, frame_buffer_nbytes, frame_buffer_sample

K, N, GAMMA = 3, 3, 0.9


def stream(num_envs=2, steps=40, capacity=30):
    """Envs whose frame is a unique number; env e's episodes last 4 + e steps, the odd-numbered
    ones end by a terminal and the even ones by truncation. Returns the buffer and, per env, the
    emitted steps as (obs stack, action id, reward, terminated, done, next obs stack)."""
    rng = np.random.default_rng(0)
    buf = frame_buffer_init(jnp.zeros(1, jnp.int32), 1, num_envs, capacity)
    add = jax.jit(frame_buffer_add)
    uid = 1000
    stacks, t_in_ep, episode = [None] * num_envs, [0] * num_envs, [0] * num_envs
    log = [[] for _ in range(num_envs)]
    for e in range(num_envs):
        stacks[e] = [uid] * K
        uid += 1
    for t in range(steps):
        rows = []
        for e in range(num_envs):
            new_frame = uid
            uid += 1
            t_in_ep[e] += 1
            done = t_in_ep[e] == 4 + e
            term = done and episode[e] % 2 == 1
            nxt = stacks[e][1:] + [new_frame]
            reward = float(rng.uniform())
            action = float(t * 10 + e)
            rows.append((stacks[e][-1], action, reward, term, done, new_frame))
            log[e].append((list(stacks[e]), action, reward, term, done, nxt))
            if done:
                t_in_ep[e], episode[e] = 0, episode[e] + 1
                stacks[e] = [uid] * K
                uid += 1
            else:
                stacks[e] = nxt
        f, a, r, te, d, fin = (np.array(x) for x in zip(*rows))
        buf = add(buf, jnp.asarray(f)[:, None], jnp.asarray(a, jnp.float32)[:, None], jnp.asarray(r, jnp.float32),
                  jnp.asarray(te), jnp.asarray(d), jnp.asarray(fin)[:, None])
    return buf, log


def expected(steps, i):
    """The n-step transition of step i of one env's log."""
    reward, disc = 0.0, 1.0
    for s in range(N):
        obs, action, r, term, done, nxt = steps[i + s]
        reward += disc * r
        disc *= GAMMA
        if done:
            break
    return steps[i][0], reward, disc * (1.0 - term), nxt


@pytest.mark.parametrize("capacity", [30, 200])  # wrapped around, and not
def test_samples_are_the_stacks_and_nstep_targets_that_were_emitted(capacity):
    buf, log = stream(capacity=capacity)
    batch = jax.jit(frame_buffer_sample, static_argnums=(2, 3, 4))(buf, jax.random.PRNGKey(1), 512, K, N, GAMMA)
    by_action = {a: (steps, i) for steps in log for i, (_, a, *_rest) in enumerate(steps)}
    seen = set()
    for obs, action, reward, discount, next_obs in zip(*(np.asarray(x) for x in batch)):
        steps, i = by_action[float(action[0])]
        want_obs, want_r, want_d, want_next = expected(steps, i)
        np.testing.assert_array_equal(obs, want_obs)
        np.testing.assert_allclose(reward, want_r, rtol=1e-5)
        np.testing.assert_allclose(discount, want_d, rtol=1e-5)
        np.testing.assert_array_equal(next_obs, want_next)
        seen.add(float(action[0]))
    assert len(seen) > 20  # many different steps drawn
    if capacity == 30:  # only recent records: nothing older than the capacity allows
        assert min(seen) >= 10 * (40 - 30)


def test_buffer_stores_each_frame_once_and_states_its_size():
    """1M records of 84x84x3 uint8 frames per seed (the stack of 9 channels is rebuilt): about
    21.2 GB, against 2 * 9 / 3 = 6 times that for (obs, next_obs) pairs of stacked frames."""
    nbytes = frame_buffer_nbytes(jnp.zeros((84, 84, 3), jnp.uint8), 1, 1, 1_000_000)
    frames = 1_000_000 * 84 * 84 * 3
    assert frames <= nbytes <= frames + 1_000_000 * 24  # the frames plus a few bytes of fields per record
    assert round(nbytes / 1e9, 1) == 21.2
