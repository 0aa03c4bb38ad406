"""flask seed-demo and flask create-superadmin."""
from sqlalchemy import func, select

from billing.models import App, KernelPlan, Role, User
from portal.extensions import db
from tests.helpers.data import user_by_email


def test_seed_demo_creates_plans_tenants_owners_and_a_superadmin(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        plans = {p.code: p.amount for p in db.session.scalars(select(KernelPlan))}
        apps = db.session.scalars(select(App).order_by(App.slug)).all()
        assert [a.slug for a in apps] == ["acme", "bravo"]
        assert [[o.email for o in a.owners] for a in apps] == [["owner@acme.test"], ["owner@bravo.test"]]
    assert plans == {"free": 0, "pro": 9900, "enterprise": 49900}
    assert user_by_email(app, "admin@kernel.test").role == Role.SUPERADMIN
    for email in ("owner@acme.test", "owner@bravo.test", "admin@kernel.test"):
        assert email in result.output
    assert "password:" in result.output


def test_seed_demo_twice_creates_nothing_more(app, runner):
    runner.invoke(args=["seed-demo"])
    runner.invoke(args=["seed-demo"])
    with app.app_context():
        assert db.session.scalar(select(func.count(App.id))) == 2
        assert db.session.scalar(select(func.count(User.id))) == 3


def test_seeded_owner_can_sign_in(runner, client):
    runner.invoke(args=["seed-demo"])
    response = client.post("/login", data={"email": "owner@acme.test", "password": "demo-password-1"})
    assert response.status_code == 302


def test_create_superadmin(app, runner, client):
    result = runner.invoke(args=["create-superadmin", "Root@Kernel.test", "--password", "a-strong-password"])
    assert result.exit_code == 0, result.output
    assert user_by_email(app, "root@kernel.test").role == Role.SUPERADMIN
    assert client.post("/login", data={"email": "root@kernel.test", "password": "a-strong-password"}).status_code == 302


def test_create_superadmin_refuses_a_short_password(app, runner):
    result = runner.invoke(args=["create-superadmin", "x@kernel.test", "--password", "short"])
    assert result.exit_code != 0
    assert user_by_email(app, "x@kernel.test") is None


def test_create_superadmin_refuses_an_existing_email(app, runner, owner):
    result = runner.invoke(args=["create-superadmin", owner.email, "--password", "a-strong-password"])
    assert result.exit_code != 0 and "already exists" in result.output
    assert user_by_email(app, owner.email).role == Role.OWNER
