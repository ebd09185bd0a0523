"""The lecture hall's routes: the stage, the lesson's steps and the comparisons.

GET  /api/stage                      what is on stage
POST /api/stage {kind, name}         put a server, a comparison or a recording on stage
GET  /api/lesson                     the plan and where the lesson is
POST /api/lesson/next | back         move one step (202: the step starts in the background)
POST /api/lesson/go {step}           move to a step
GET  /api/comparisons                the comparisons and the last run
POST /api/comparisons/NAME/run {clients, seconds}   run one (202: progress as events);
     the students comparison also takes {servers: [A, B]}, two students' servers
"""

from flask import Blueprint, current_app, jsonify

from supervisor.web.api import body, field
from supervisor.web.auth import instructor_required

bp = Blueprint("hall", __name__)


def classroom():
    return current_app.extensions["forkwatch_classroom"]


@bp.get("/api/stage")
def stage():
    return jsonify(classroom().stage)


@bp.post("/api/stage")
@instructor_required
def set_stage():
    data = body()
    return jsonify(classroom().set_stage(field(data, "kind", str), field(data, "name", str)))


@bp.get("/api/lesson")
def lesson():
    return jsonify(classroom().describe_lesson())


@bp.post("/api/lesson/next")
@instructor_required
def lesson_next():
    return jsonify(classroom().next()), 202


@bp.post("/api/lesson/back")
@instructor_required
def lesson_back():
    return jsonify(classroom().back()), 202


@bp.post("/api/lesson/go")
@instructor_required
def lesson_go():
    return jsonify(classroom().go(field(body(), "step", int, required=True))), 202


@bp.get("/api/comparisons")
def comparisons():
    return jsonify(classroom().comparisons.describe())


@bp.post("/api/comparisons/<name>/run")
@instructor_required
def run_comparison(name):
    data = body()
    clients = field(data, "clients", int)
    seconds = field(data, "seconds", (int, float))
    servers = field(data, "servers", list)
    return jsonify(classroom().run_comparison(name, clients, seconds, servers=servers)), 202
