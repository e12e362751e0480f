// Every driver the operator knows. Adding one: a file exporting a DriverFactory, and a line here.
import { containerdDriver } from "./containerd/driver.ts";
import { kvmDriver } from "./kvm/driver.ts";
import { DriverRegistry } from "./registry.ts";

export const drivers = new DriverRegistry().register(containerdDriver).register(kvmDriver);
