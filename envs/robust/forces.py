"""External forces on named brax bodies: RARL's adversary pushing on a link.

MuJoCo takes such a push as `xfrc_applied`; brax's generalized pipeline has no such input, so the
force enters as the generalized force it is equivalent to. A force F (world frame) applied at the
origin of link i does virtual work F . v_i, where v_i = J_i(q) qd is the origin's linear velocity;
the generalized force is therefore

    tau_ext = sum_i J_i(q)^T F_i,

added to the actuators' tau at every physics sub-step of the env step (the force is held for the
whole env step, as MuJoCo holds `xfrc_applied`). v_i is linear in qd, so J_i^T F_i is the
vector-Jacobian product of `qd -> v_i` with F_i: exact for hinge, slide, ball and free joints alike.

Channels are named `<link>_force_<axis>`, axis x, y or z (world frame): RARL's and QARL's planar
forces on the hopper's foot are `foot_force_x` and `foot_force_z`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

AXES = ("x", "y", "z")


def force_channels(links) -> tuple[str, ...]:
    """The force channel names of a brax env with these links."""
    return tuple(f"{link}_force_{a}" for link in links for a in AXES)


def parse_channel(channel: str, links) -> tuple[int, int]:
    """(link index, axis index) of a force channel `<link>_force_<axis>`."""
    link, _, axis = channel.rpartition("_force_")
    return list(links).index(link), AXES.index(axis)


def body_force_tau(sys, q, qd, links, forces):
    """The generalized force (qd_size,) of world-frame forces [k, 3] on the origins of links [k]."""
    from brax import kinematics

    def origin_velocity(v):
        return kinematics.forward(sys, q, v)[1].vel[jnp.asarray(links)]

    _, pull = jax.vjp(origin_velocity, qd)
    return pull(jnp.asarray(forces, qd.dtype))[0]


class ForcedPipeline:
    """brax's generalized pipeline with `forces` [k, 3] on `links` added to every step.

    The step is brax's generalized step (`brax.generalized.pipeline.step`) with the external tau added
    to the actuators' tau before the dynamics; `init` is the base pipeline's."""

    def __init__(self, base, links, forces):
        self._base, self._links, self._forces = base, links, forces

    def init(self, *args, **kwargs):
        return self._base.init(*args, **kwargs)

    def step(self, sys, state, act, debug=False):
        from brax import actuator, contact, kinematics
        from brax.generalized import constraint, dynamics, integrator, mass

        tau = actuator.to_tau(sys, act, state.q, state.qd)
        tau = tau + body_force_tau(sys, state.q, state.qd, self._links, self._forces)
        state = state.replace(qf_smooth=dynamics.forward(sys, state, tau))
        state = state.replace(qf_constraint=constraint.force(sys, state))
        state = integrator.integrate(sys, state)
        x, xd = kinematics.forward(sys, state.q, state.qd)
        state = dynamics.transform_com(sys, state.replace(x=x, xd=xd))
        state = constraint.jacobian(sys, mass.matrix_inv(sys, state, sys.matrix_inv_iterations))
        if debug:
            state = state.replace(contact=contact.get(sys, state.x))
        return state
