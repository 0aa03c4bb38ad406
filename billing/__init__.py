"""The kernel's billing domain: plans, money, proration, the subscription state
machine, webhooks and the Stripe gateway.

Nothing in this package imports Flask; the portal and the jobs call into it.
"""
