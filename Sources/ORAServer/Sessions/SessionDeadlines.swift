import Foundation
import Logging
import ORACore
import ORADirectory
import ORAStore
import ServiceLifecycle

/// The sessions' deadlines and their re-checks, as a service: an unanswered offer or control request, the longest
/// session, a policy version that no longer allows a session, a helper who lost the group that allowed it. At
/// shutdown it ends the sessions held here (`server_restart`).
final class SessionDeadlines: Service, Sendable {
    private let table: SessionTable
    private let broker: SessionBroker
    private let policies: PolicyService
    private let directory: DirectoryClient
    private let clock: ServerClock
    private let logger: Logger

    init(
        table: SessionTable, broker: SessionBroker, policies: PolicyService, directory: DirectoryClient,
        clock: ServerClock, logger: Logger
    ) {
        self.table = table
        self.broker = broker
        self.policies = policies
        self.directory = directory
        self.clock = clock
        self.logger = logger
    }

    /// Applies deadlines as they fall due, and checks live sessions again when another policy version becomes active
    /// and every minute for lost memberships, until shutdown. Between two rounds it sleeps until the next deadline,
    /// woken early by any change of a session (which may bring a deadline closer) or of the policy.
    func run() async throws {
        let wakeup = table.wakeup
        policies.signalActivations(to: wakeup)
        await cancelWhenGracefulShutdown {
            var version = self.policies.active.activation?.version
            var lastMembershipCheck = self.clock.instant()
            while !Task.isCancelled {
                await self.expireDue(at: self.clock.now())
                let current = self.policies.active.activation?.version
                if current != version {
                    version = current
                    await self.recheck(endingWith: .policyRevoked)
                } else if self.clock.instant() - lastMembershipCheck > Self.membershipCheckInterval {
                    lastMembershipCheck = self.clock.instant()
                    await self.recheck(endingWith: .membershipLost)
                }
                let membershipDue = Self.membershipCheckInterval - (self.clock.instant() - lastMembershipCheck)
                await wakeup.wait(atMost: max(.milliseconds(10), min(membershipDue, self.untilNextDeadline())))
            }
        }
        // Shutting down: the sessions held here cannot go on.
        for (id, _) in table.allLive {
            await broker.end(id, reason: .serverRestart, actor: .system(ServerApplication.instanceName))
        }
    }

    /// How often live sessions are checked for helpers who lost the group that allowed them.
    static let membershipCheckInterval = Duration.seconds(60)

    /// The time until the earliest deadline of the live sessions (at most a minute).
    private func untilNextDeadline() -> Duration {
        guard let next = table.nextDeadline else { return .seconds(60) }
        return min(.seconds(60), .seconds(max(0, next.date.timeIntervalSince(clock.now()))))
    }

    /// Applies every deadline that has passed at `date`.
    func expireDue(at date: Date) async {
        let now = AuditTimestamp(date)
        for id in table.due(at: now) {
            guard let (_, after, step) = try? table.update(id, { $0.expire(at: now) }) else { continue }
            // Every deadline takes access away (or refuses it): it is never held up by its record.
            await broker.takeEffect(
                step, of: after, id: id, actor: .system(ServerApplication.instanceName), source: nil,
                details: step.timedOut ? ["timed_out": true] : [:], confirmingWithin: .zero)
        }
        table.pruneEnded(before: date.addingTimeInterval(-3600))
    }

    /// Decides every live session again with the active policy and the directory's facts now, and ends those it
    /// no longer allows with `reason`. A session whose facts cannot be read now is left alone and checked again
    /// at the next round.
    func recheck(endingWith reason: SessionEndReason) async {
        for (id, live) in table.allLive {
            let allowed: Bool
            do {
                guard let computer = try await directory.computer(named: live.offer.machine),
                    let dn = try? DistinguishedName(live.offer.helper.dn)
                else {
                    await broker.end(id, reason: reason, actor: .system(ServerApplication.instanceName))
                    continue
                }
                let groups = try await directory.groups(of: dn)
                let decision = policies.active.set.decide(
                    operatorGroups: groups, machine: MachineFacts(computer), mode: live.offer.mode,
                    ticket: live.offer.ticket, at: clock.now())
                allowed = decision.allowed.map { $0 >= live.offer.mode } ?? false
            } catch {
                logger.warning(
                    "could not check a session against the directory; checking again later",
                    metadata: ["session.id": "\(id)", "error": "\(error.description)"])
                continue
            }
            if !allowed {
                logger.notice("session no longer allowed", metadata: ["session.id": "\(id)", "reason": "\(reason)"])
                await broker.end(id, reason: reason, actor: .system(ServerApplication.instanceName))
            }
        }
    }
}
