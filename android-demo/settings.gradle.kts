// The jobseal technician demo for Android. Needs the Android SDK (compileSdk 35) and the native
// library laid out by ../bindings/scripts/build-android.sh; see README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "jobseal-android-demo"
include(":app")
// The bindings' Android library module (AAR: per-ABI libjobseal_ffi.so, generated Kotlin, JNA).
include(":jobseal")
project(":jobseal").projectDir = file("../bindings/android")
