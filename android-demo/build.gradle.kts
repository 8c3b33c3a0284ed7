// Plugin versions for both modules (:app here, :jobseal in ../bindings/android).
plugins {
    id("com.android.application") version "8.7.3" apply false
    id("com.android.library") version "8.7.3" apply false
    // Same Kotlin as the JVM test modules (jvm-tests, screen-tests) and bindings/kotlin.
    id("org.jetbrains.kotlin.android") version "2.2.21" apply false
}
